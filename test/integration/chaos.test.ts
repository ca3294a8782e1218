import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseChaos } from "../../infra/local/chaos";
import { consoleLog } from "../../infra/local/log";
import { type LocalStack, startLocalStack } from "../../infra/local/stack";
import { runChecker } from "../chaos/check";
import { chaosStackOptions } from "../chaos/stack-options";
import { type Sink, startSink } from "../helpers/sink";
import { uniqueStage } from "../helpers/stack";

/** A local stack with these faults (`deployed`: on serverless.yml's timeouts) and a sink, for one describe block. */
function useChaosStack(faults: string, seed: string, deployed = false) {
  const fixture = {} as { stack: LocalStack; sink: Sink };
  beforeAll(async () => {
    fixture.stack = await startLocalStack({
      ...chaosStackOptions(parseChaos(faults, seed), { deployed }),
      stage: uniqueStage(),
      port: 0,
      endpoints: inject("localEndpoints"),
      log: consoleLog({ prefix: "[stack]", minLevel: "error" }),
    });
    fixture.sink = await startSink();
  }, 120_000);
  afterAll(async () => {
    await fixture.sink?.close();
    await fixture.stack?.stop();
  });
  return fixture;
}

/** The chaos checker (`npm run chaos`), small and with a fixed seed, so that npm test runs it. */
describe("invariants under duplicated deliveries, redeliveries and crashes", () => {
  const chaos = useChaosStack("duplicate,redeliver,crash=0.03", "3");

  it("12 random workflows: every run finishes as expected and no invariant is violated", async () => {
    const result = await runChecker({ ...chaos, runs: 12, seed: 3, timeoutMs: 240_000 });
    expect(result.violations).toEqual([]);
    expect(result.runs).toBe(12);
    // the faults really happened
    expect(result.faults.duplicates).toBeGreaterThan(0);
    expect(result.faults.redeliveries).toBeGreaterThan(0);
    expect(result.faults.crashes).toBeGreaterThan(0);
  }, 300_000);
});

/**
 * The same on the configuration users run (serverless.yml's visibility timeouts and sweep
 * schedule, nothing shortened): 6 runs of a 6-item fan-out and a successor. Every run must end, no
 * invariant broken, and none may take longer than 150 s: several crashes in a row on one run cost
 * about 35 s each (a lease, or a look every 30 s); before the sweeper's ticks and re-sends in
 * groups of their own, such runs waited out 6- and 15-minute visibility timeouts.
 * (`npm run chaos -- --deployed` measures the stalls.)
 */
describe("invariants and progress under faults, on the deployed timeouts", () => {
  const chaos = useChaosStack("duplicate,redeliver,crash=0.03", "5", true);

  it("6 fan-outs and their successors: each item and successor once, every run ended within 150 s", async () => {
    const result = await runChecker({
      ...chaos,
      runs: 6,
      seed: 5,
      workload: "fanout",
      subChecks: false,
      timeoutMs: 180_000,
    });
    expect(result.violations).toEqual([]);
    expect(result.durationsMs).toHaveLength(6);
    expect(Math.max(...result.durationsMs)).toBeLessThanOrEqual(150_000);
    expect(result.faults.crashes).toBeGreaterThan(0);
  }, 300_000);
});
