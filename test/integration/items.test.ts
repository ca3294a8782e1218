/**
 * A with-items task's items (lib/engine/items.ts) against DynamoDB Local: their inputs stored in
 * chunks when the task starts, an item's own record written only when a fill queues it.
 */
import { randomUUID } from "node:crypto";
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { db } from "../../lib/clients";
import { config } from "../../lib/config";
import { chunkSize, itemRecords, writeChunks } from "../../lib/engine/items";
import type { FanOutRecord, TaskRecord } from "../../lib/engine/task-record";
import { keys } from "../../lib/store/keys";
import { readItem } from "../../lib/store/run-state";
import { itemRecord } from "../helpers/records";
import { eventsOf, register, waitForRun } from "../helpers/runs";
import { useSink } from "../helpers/sink";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack();
const sinkFixture = useSink();

const recordsOf = (runId: string, inputs: unknown[]): TaskRecord[] =>
  inputs.map((input, item) =>
    itemRecord(
      runId,
      item,
      input === undefined ? { inputError: { code: "ExpressionError", message: "no" } } : { input },
    ),
  );

async function itemsOf(runId: string, task: string): Promise<TaskRecord[]> {
  const { Items = [] } = await db().send(
    new QueryCommand({
      TableName: config.tableName(),
      KeyConditionExpression: "pk = :pk AND begins_with(sk, :sk)",
      ExpressionAttributeValues: { ":pk": keys.runPartition(runId), ":sk": keys.itemPrefix(task) },
      ConsistentRead: true,
    }),
  );
  return Items as TaskRecord[];
}

describe("items in chunks", () => {
  it("gives back every item's input (or input error) from its chunk, across chunk boundaries", async () => {
    const runId = randomUUID();
    const inputs = Array.from({ length: 250 }, (_, i) =>
      i === 7 ? undefined : { i, text: "x".repeat(i % 13) },
    );
    const records = recordsOf(runId, inputs);
    const size = chunkSize(records);
    expect(size).toBe(100); // small items: the most a chunk holds
    await writeChunks(records, size);
    const got = await itemRecords({ runId, task: "each", chunk: size }, [0, 7, 99, 100, 101, 249]);
    expect(got.get(0)?.input).toEqual({ i: 0, text: "" });
    expect(got.get(7)?.inputError?.code).toBe("ExpressionError");
    expect(got.get(100)).toMatchObject({
      item: 100,
      input: { i: 100, text: "x".repeat(9) },
      action: "core.noop",
    });
    expect(got.get(249)?.input).toEqual({ i: 249, text: "x".repeat(2) });
  });

  it("holds fewer large items a chunk (at most 300 KB of inputs)", () => {
    const records = recordsOf("r", [{ big: "x".repeat(90_000) }, { small: 1 }]);
    expect(chunkSize(records)).toBe(3);
  });

  it("keeps two starts that raced with different chunk sizes apart: the parent's size names its chunks", async () => {
    const runId = randomUUID();
    await writeChunks(recordsOf(runId, [{ from: "a0" }, { from: "a1" }, { from: "a2" }]), 2);
    await writeChunks(recordsOf(runId, [{ from: "b0" }, { from: "b1" }, { from: "b2" }]), 3);
    // a chunk that exists is kept: a third start with size 2 leaves a's chunks as they were
    await writeChunks(recordsOf(runId, [{ from: "c0" }, { from: "c1" }, { from: "c2" }]), 2);
    const a = await itemRecords({ runId, task: "each", chunk: 2 }, [0, 2]);
    const b = await itemRecords({ runId, task: "each", chunk: 3 }, [0, 2]);
    expect([a.get(0)?.input, a.get(2)?.input, b.get(0)?.input, b.get(2)?.input]).toEqual([
      { from: "a0" },
      { from: "a2" },
      { from: "b0" },
      { from: "b2" },
    ]);
  });

  it("writes an item's record only when it is queued: never more items than the task dispatched", async () => {
    const sink = sinkFixture.sink;
    await register(stack, {
      name: "lazy-items",
      tasks: {
        each: {
          action: "core.http",
          withItems: "{% input.items %}",
          concurrency: 2,
          input: { url: `${sink.url}/item`, body: { index: "{% index %}" } },
        },
      },
    });
    const held = sink.holdNext(2);
    const { runId } = await stack.client.createRun("lazy-items", { input: { items: [1, 2, 3, 4, 5, 6] } });
    await held; // two items run, held by the sink: the other four wait for a slot
    const items = await itemsOf(runId, "each");
    const parent = await readItem<FanOutRecord>(keys.task(runId, "each"));
    expect(parent?.nextIndex).toBe(2);
    expect(items.map((i) => i.item)).toEqual([0, 1]);
    // an item not queued yet is shown waiting, with its input from its chunk; past the last, none
    const waiting = await stack.api("GET", `/runs/${runId}/tasks/each?item=4`);
    expect(waiting.status).toBe(200);
    expect(waiting.body).toMatchObject({
      item: 4,
      status: "pending",
      attempts: 0,
      input: { body: { index: 4 } },
    });
    expect((await stack.api("GET", `/runs/${runId}/tasks/each?item=6`)).body).toMatchObject({
      error: { code: "TaskNotFound" },
    });
    sink.reset(); // the rest run as they come
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("succeeded");
    expect((await itemsOf(runId, "each")).map((i) => i.item)).toEqual([0, 1, 2, 3, 4, 5]);
    // each item queued once, by the fill that wrote it
    const queued = (await eventsOf(stack, runId)).filter(
      (e) => e.type === "TaskQueued" && e.item !== undefined,
    );
    expect(queued.map((e) => e.item).sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
