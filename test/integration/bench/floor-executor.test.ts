/**
 * The floor's own requests (bench/floor-executor.ts) do what the bench says they time: every item
 * of the fan-out put, claimed, succeeded and counted once; every run triggered, its task run and
 * the run ended. A floor that skipped work would read as faster than it is.
 */
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { floorFanout, floorRuns } from "../../../bench/floor-executor";
import { db } from "../../../lib/clients";
import { useLocalStack } from "../../helpers/stack";

const fixture = useLocalStack();

/** Every item in partition `pk`, read strongly consistent. */
async function partition(pk: string) {
  const { Items = [] } = await db().send(
    new QueryCommand({
      TableName: fixture.stack.env.TABLE_NAME,
      KeyConditionExpression: "pk = :pk",
      ExpressionAttributeValues: { ":pk": pk },
      ConsistentRead: true,
    }),
  );
  return Items;
}

describe("the floor's own requests", () => {
  it("run every item of a fan-out once and count it once, never more than `concurrency` out", async () => {
    const run = await floorFanout(fixture.stack, { items: 95, concurrency: 20, workers: 4 });
    expect(run.perSecond).toBeGreaterThan(0);
    expect(run.pk).toBeDefined();
    const items = await partition(run.pk);
    const parent = items.find((i) => i.sk === "PARENT");
    expect(parent?.counted).toBe(95);
    const executed = items.filter((i) => i.sk.startsWith("ITEM#"));
    expect(executed).toHaveLength(95);
    expect(executed.every((i) => i.status === "succeeded")).toBe(true);
    expect(run.mostOut).toBeLessThanOrEqual(20);
  });

  it("trigger each run, run its task and end it", async () => {
    const run = await floorRuns(fixture.stack, { tasks: 12, taskSeconds: 0.05, workers: 4, clients: 4 });
    expect(run.seconds).toBeGreaterThanOrEqual((12 * 0.05) / 4);
    for (const pk of run.runIds) {
      const items = await partition(pk);
      expect(items.map((i) => [i.sk, i.status]).sort()).toEqual([
        ["RUN", "succeeded"],
        ["TASK", "succeeded"],
      ]);
    }
  });
});
