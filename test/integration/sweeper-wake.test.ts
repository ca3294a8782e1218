/**
 * A run's launch wakes the sweeper when no chain of ticks lives (lib/engine/tick.ts,
 * `wakeSweeper`): on a stack whose schedule never comes (as in the first minute after a deploy,
 * or after `npm start`), the first run created starts the chain, and a launch while it lives
 * sends no kick.
 */
import { randomUUID } from "node:crypto";
import { DeleteCommand } from "@aws-sdk/lib-dynamodb";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { db, sqs } from "../../lib/clients";
import { config } from "../../lib/config";
import { keys } from "../../lib/store/keys";
import { readItem } from "../../lib/store/run-state";
import { register, waitForRun } from "../helpers/runs";
import { useLocalStack } from "../helpers/stack";

// the schedule's first call would come after an hour: only a launch can start the chain here
const stack = useLocalStack({ scheduleIntervalMs: 3_600_000 });

/** Kicks (ticks without a due time) sent to the sweep queue during each test. */
let kicks = 0;
const countKicks = (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
  const input = (args as { input: { QueueUrl?: string; MessageBody?: string } }).input;
  if (input.QueueUrl === config.sweepQueueUrl() && input.MessageBody === "{}") kicks++;
  return next(args);
};
beforeEach(() => {
  kicks = 0;
  sqs().middlewareStack.add(countKicks as never, { step: "initialize", name: "countKicks" });
});
afterEach(() => {
  sqs().middlewareStack.remove("countKicks");
});

const tickAt = async () => (await readItem<{ tickAt?: string }>(keys.sweeperTick))?.tickAt;

async function createRun(): Promise<string> {
  const name = `wake-${randomUUID().slice(0, 8)}`;
  await register(stack, { name, tasks: { a: { action: "core.noop" } } });
  return (await stack.client.createRun(name, {})).runId;
}

describe("a run's launch and the sweeper", () => {
  it("with no chain of ticks alive, the launch starts one: the tick item moves on every second", async () => {
    await db().send(new DeleteCommand({ TableName: config.tableName(), Key: keys.sweeperTick }));
    await waitForRun(stack, await createRun());
    expect(kicks).toBe(1);
    await expect.poll(tickAt, { timeout: 5000 }).toBeDefined();
    const first = await tickAt();
    await expect.poll(tickAt, { timeout: 5000 }).not.toBe(first);
  });

  it("with a chain alive, launches send no kick", async () => {
    await expect.poll(tickAt, { timeout: 5000 }).toBeDefined();
    await Promise.all(Array.from({ length: 5 }, createRun));
    expect(kicks).toBe(0);
  });
});
