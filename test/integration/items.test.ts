/**
 * A with-items task's items (lib/engine/items.ts) against DynamoDB Local: their inputs stored in
 * chunks when the task starts, an item's own record written only by its first claim, from the
 * record its message carries.
 */
import { randomUUID } from "node:crypto";
import { PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { db } from "../../lib/clients";
import { config } from "../../lib/config";
import { claim } from "../../lib/engine/claim";
import { chunkSize, itemRecords, queuedItems, writeChunks } from "../../lib/engine/items";
import type { FanOutRecord, TaskRecord } from "../../lib/engine/task-record";
import { getTaskDetail } from "../../lib/run-view";
import { listEvents, sortId } from "../../lib/store/events";
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

  it("writes an item's record only when it is claimed: never more items than the task dispatched", async () => {
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
    // each item queued once, recorded by its first claim
    const queued = (await eventsOf(stack, runId)).filter(
      (e) => e.type === "TaskQueued" && e.item !== undefined,
    );
    expect(queued.map((e) => e.item).sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("an item queued without its record: shown queued, put by its first claim with TaskQueued at its queueing, claimed once from copies of its message", async () => {
    const runId = randomUUID();
    const queuedAt = new Date(Date.now() - 2000).toISOString();
    const queuedAs = sortId(new Date(queuedAt));
    const put = (item: Record<string, unknown>) =>
      db().send(new PutCommand({ TableName: config.tableName(), Item: item }));
    await writeChunks(recordsOf(runId, [{ n: 0 }, { n: 1 }]), 100);
    const parent: FanOutRecord = {
      runId,
      task: "each",
      status: "running",
      fanOut: true,
      total: 2,
      nextIndex: 2,
      active: 2,
      succeededItems: 0,
      failedItems: 0,
      concurrency: 2,
      maxFailures: 0,
      version: 1,
      chunk: 100,
      filledAt: queuedAs,
      createdAt: queuedAt,
    };
    await Promise.all([
      put({ ...keys.run(runId), runId, status: "running" }),
      put({ ...keys.task(runId, "each"), ...parent }),
    ]);
    // queued (below nextIndex), no record yet: shown queued since the fill, with its input
    expect(await getTaskDetail(runId, "each", { item: "1" })).toMatchObject({
      status: "queued",
      attempts: 0,
      createdAt: queuedAt,
      input: { n: 1 },
    });

    const queued = (await queuedItems({ ...parent, chunk: 100 }, new Map([[1, queuedAs]]))).get(1);
    const message = { runId, task: "each", item: 1, queued };
    // three copies of its message (a duplicate send, a look's re-send) claimed at the same instant
    const claims = await Promise.all(["w1", "w2", "w3"].map((worker) => claim(message, worker)));
    expect(claims.filter((c) => c.kind === "claimed")).toHaveLength(1);
    expect(claims.filter((c) => c.kind === "wait")).toHaveLength(2); // the winner's lease is live
    const [record] = (await itemsOf(runId, "each")) as TaskRecord[];
    expect(record).toMatchObject({
      item: 1,
      status: "running",
      attempt: 1,
      createdAt: queuedAt,
      input: { n: 1 },
    });
    const events = (await listEvents(runId)).filter((e) => e.item === 1);
    expect(events.map((e) => [e.type, e.attempt])).toEqual([
      ["TaskQueued", undefined],
      ["TaskStarted", 1],
    ]);
    expect(events[0]?.at).toBe(queuedAt);
  });
});
