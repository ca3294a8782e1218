import { describe, expect, it } from "vitest";
import { type FanoutRun, fanoutFigures } from "../../../bench/fanout";
import { efficiencyFigures, markdownTable, percentile } from "../../../bench/figures";
import { stepFunctionsStandardUsdPerMillion, usdPerMillionTasks } from "../../../bench/prices";

describe("percentile", () => {
  it("interpolates between the nearest ranks, whatever the order of the values", () => {
    expect(percentile([40, 10, 30, 20], 50)).toBe(25);
    expect(percentile([1, 2, 3, 4, 5], 50)).toBe(3);
    expect(percentile([1, 2, 3, 4, 5], 0)).toBe(1);
    expect(percentile([1, 2, 3, 4, 5], 100)).toBe(5);
    expect(percentile([0, 100], 99)).toBeCloseTo(99);
    expect(percentile([7], 99)).toBe(7);
  });

  it("has no value for no values, and refuses a percentile out of range", () => {
    expect(percentile([], 50)).toBeUndefined();
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });
});

describe("efficiencyFigures", () => {
  it("computes ideal time, efficiency and duplicates as the issue defines them", () => {
    expect(
      efficiencyFigures({ tasks: 320, taskSeconds: 1, workers: 16, actualSeconds: 25, executions: 321 }),
    ).toEqual({
      tasks: 320,
      taskSeconds: 1,
      workers: 16,
      idealSeconds: 20,
      actualSeconds: 25,
      efficiency: 0.8,
      executions: 321,
      duplicates: 1,
    });
  });
});

describe("fanoutFigures", () => {
  const run = (seconds: number, fanInLatencyMs: number, successorExecutions = 1): FanoutRun => ({
    runId: "r",
    seconds,
    itemsPerSecond: 1000 / seconds,
    fanInLatencyMs,
    nodeCpuMs: seconds * 500,
    itemExecutions: 1000,
    successorExecutions,
  });

  it("gives items per second over all runs, fan-in percentiles and each run's successor executions", () => {
    const figures = fanoutFigures(1000, 100, [run(10, 100), run(20, 300, 2), run(10, 200)]);
    expect(figures.itemsPerSecond).toBe(75);
    expect(figures.fanInLatencyMs).toEqual({ p50: 200, p99: 298 });
    expect(figures.successorExecutions).toEqual([1, 2, 1]);
    expect(figures.itemDuplicates).toBe(0);
    expect(figures.nodeCpuMsPerItem).toBe(6.67);
    expect(figures.floorExecutor).toBeNull();
  });

  it("reads the rate against the store's limit and against the floor's own requests", () => {
    const limit = {
      clients: 32,
      seconds: 5,
      conditionalPutsPerSecond: 600,
      itemsPerSecond: 200,
      measuredPutsPerSecond: [600],
    };
    const floor = [
      { seconds: 4, perSecond: 250, nodeCpuMs: 1000 },
      { seconds: 6, perSecond: 166.7, nodeCpuMs: 1400 },
    ];
    const figures = fanoutFigures(1000, 100, [run(10, 100), run(10, 100)], undefined, limit, floor);
    expect(figures.storeLimitRatio).toBe(0.5);
    expect(figures.floorExecutor).toMatchObject({
      itemsPerSecond: 200,
      storeLimitRatio: 1,
      onceflowRatio: 0.5,
      nodeCpuMsPerItem: 1.2,
    });
  });
});

describe("prices", () => {
  it("adds the services up per million tasks", () => {
    const usd = usdPerMillionTasks({
      readUnits: 8,
      writeUnits: 16,
      sqsRequests: 4,
      lambdaInvocations: 2,
      lambdaGbSeconds: 0,
      apiRequests: 1,
    });
    expect(usd.dynamodb).toBeCloseTo(8 * 0.125 + 16 * 0.625);
    expect(usd.sqs).toBeCloseTo(2);
    expect(usd.lambda).toBeCloseTo(0.4);
    expect(usd.api).toBeCloseTo(1);
    expect(usd.total).toBeCloseTo(14.4);
  });

  it("prices Step Functions Standard by state transitions: one per task, plus the states around them", () => {
    expect(stepFunctionsStandardUsdPerMillion(1, 0)).toBeCloseTo(25);
    expect(stepFunctionsStandardUsdPerMillion(1001, 1)).toBeCloseTo((25 * 1002) / 1001);
  });
});

describe("markdownTable", () => {
  it("aligns the columns and formats numbers", () => {
    const table = markdownTable([{ scenario: "fanout", figure: "itemsPerSecond", value: 1234.5678 }]);
    expect(table.split("\n")).toEqual([
      "| scenario | figure         | value     |",
      "| -------- | -------------- | --------- |",
      "| fanout   | itemsPerSecond | 1,234.568 |",
    ]);
  });
});
