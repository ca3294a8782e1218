/**
 * The look at a with-items task (lib/engine/look.ts) against DynamoDB Local: items carry no entry
 * in the sweeper's index, so this look is what re-sends an item whose message or worker was lost,
 * counts an item whose completion was lost, re-sends an item queued without its record whose
 * message was lost (with that record), and brings the task's next look forward to the first lease
 * (or queueing) that falls due. The task messages it sends are captured, not delivered (no worker takes them),
 * and the stack runs no sweeper, so nothing else touches the items.
 */
import { randomUUID } from "node:crypto";
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { db, sqs } from "../../lib/clients";
import { config } from "../../lib/config";
import { writeChunks } from "../../lib/engine/items";
import { lookAtItems } from "../../lib/engine/look";
import type { FanOutRecord, TaskRecord } from "../../lib/engine/task-record";
import { sortId } from "../../lib/store/events";
import { keys } from "../../lib/store/keys";
import { itemRecord } from "../helpers/records";
import { useLocalStack } from "../helpers/stack";

useLocalStack({ sweeper: false });

const NOW = new Date();
const at = (seconds: number) => new Date(NOW.getTime() + seconds * 1000).toISOString();

/** Task messages sent during a test: captured before they reach SQS, and never delivered. */
let sent: { body: Record<string, unknown>; group?: string; dedup?: string }[] = [];
beforeEach(() => {
  sent = [];
  const capture = () => async (args: unknown) => {
    const input = (args as { input: { QueueUrl?: string; Entries?: Record<string, string>[] } }).input;
    for (const e of input.Entries ?? [])
      sent.push({
        body: JSON.parse(e.MessageBody ?? "{}"),
        group: e.MessageGroupId,
        dedup: e.MessageDeduplicationId,
      });
    return { output: { Successful: [], Failed: [] }, response: {} };
  };
  sqs().middlewareStack.add(capture as never, { step: "initialize", name: "captureSends" });
});
afterEach(() => {
  sqs().middlewareStack.remove("captureSends");
});

function parentOf(runId: string, fields: Partial<FanOutRecord> = {}): FanOutRecord {
  return {
    runId,
    task: "each",
    status: "running",
    fanOut: true,
    total: 6,
    nextIndex: 6,
    active: 6,
    succeededItems: 0,
    failedItems: 0,
    concurrency: 6,
    maxFailures: 0,
    countedBelow: 0,
    countedAbove: [],
    version: 3,
    createdAt: NOW.toISOString(),
    sweepShard: "0",
    sweepAt: at(30),
    ...fields,
  };
}

const itemOf = (runId: string, item: number, fields: Partial<TaskRecord>) =>
  itemRecord(runId, item, { createdAt: NOW.toISOString(), ...fields });

async function put(record: TaskRecord | FanOutRecord): Promise<void> {
  const key =
    "fanOut" in record
      ? keys.task(record.runId, record.task)
      : keys.item(record.runId, record.task, record.item as number);
  await db().send(new PutCommand({ TableName: config.tableName(), Item: { ...key, ...record } }));
}

async function parentAsStored(runId: string): Promise<FanOutRecord> {
  const { Item } = await db().send(
    new GetCommand({ TableName: config.tableName(), Key: keys.task(runId, "each"), ConsistentRead: true }),
  );
  return Item as FanOutRecord;
}

/** Six items, one in each state a look tells apart. */
async function sixItems(runId: string, parent: FanOutRecord): Promise<void> {
  await put(parent);
  await Promise.all([
    // 0: queued, its message lost (the fill died before its send): overdue at its sweepAt
    put(itemOf(runId, 0, { sweepAt: at(-5) })),
    // 1: queued a moment ago: not due yet
    put(itemOf(runId, 1, { sweepAt: at(25) })),
    // 2: running, its worker dead (lease expired): overdue, sent for attempt 1
    put(itemOf(runId, 2, { status: "running", attempt: 1, leaseUntil: at(-2), sweepAt: at(-20) })),
    // 3: running under a live lease that ends in 12 s: not due, but the task's next look moves up to it
    put(itemOf(runId, 3, { status: "running", attempt: 1, leaseUntil: at(12), sweepAt: at(-20) })),
    // 4: settled, its completion lost: counted through the look
    put(itemOf(runId, 4, { status: "succeeded", attempt: 1, output: 4 })),
    // 5: parked for a slot of a concurrency limit (no sweepAt): the hand-over sends its message
    put(itemOf(runId, 5, { slot: "waiting" })),
  ]);
}

describe("the look at a with-items task", () => {
  it("re-sends the overdue items, counts the settled one, and moves the next look up to the first lease's end", async () => {
    const runId = randomUUID();
    const parent = parentOf(runId);
    await sixItems(runId, parent);

    const lost = await lookAtItems(parent, NOW);

    expect(lost).toEqual([{ runId, task: "each", item: 4, attempt: 1, outcome: "succeeded" }]);
    const resent = sent.map((s) => s.body).sort((a, b) => (a.item as number) - (b.item as number));
    expect(resent).toEqual([
      { runId, task: "each", item: 0 },
      { runId, task: "each", item: 2, attempt: 1 },
    ]);
    // each in a group of its own (never behind a message whose worker died holding it)
    expect(sent.every((s) => s.group?.startsWith("own/"))).toBe(true);
    expect((await parentAsStored(runId)).sweepAt).toBe(at(12));
  });

  it("a second look at the same overdue items sends them with the same dedup ids (SQS keeps one)", async () => {
    const runId = randomUUID();
    const parent = parentOf(runId);
    await sixItems(runId, parent);
    await lookAtItems(parent, NOW);
    const first = sent.map((s) => s.dedup);
    sent = [];
    await lookAtItems(parent, new Date(NOW.getTime() + 3000));
    expect(sent.map((s) => s.dedup)).toEqual(first);
  });

  it("a look a period later sends them again with new dedup ids: the copy before may have died with a worker before its claim", async () => {
    const runId = randomUUID();
    const parent = parentOf(runId);
    await sixItems(runId, parent);
    await lookAtItems(parent, NOW);
    const first = new Map(sent.map((s) => [s.body.item, s.dedup]));
    sent = [];
    // nothing claimed them: the same items, due at the same times, one look period (20 s) later
    await lookAtItems(parent, new Date(NOW.getTime() + 20_000));
    const again = sent.filter((s) => first.has(s.body.item));
    expect(again).toHaveLength(first.size);
    for (const s of again) expect(s.dedup).not.toBe(first.get(s.body.item));
  });

  it("never puts off a sooner look that another look set meanwhile", async () => {
    const runId = randomUUID();
    const parent = parentOf(runId);
    await sixItems(runId, parent);
    // another look (seeing a lease that ends sooner) moved the next look to 4 s from now
    await put({ ...parent, sweepAt: at(4) });
    await lookAtItems(parent, NOW); // it read the task before that, with its look 30 s ahead
    expect((await parentAsStored(runId)).sweepAt).toBe(at(4));
  });

  it("does not put a task that left the sweeper's index back into it", async () => {
    const runId = randomUUID();
    const parent = parentOf(runId);
    await sixItems(runId, parent);
    // it ended meanwhile: out of the index (no sweepShard, no sweepAt)
    const { sweepShard: _shard, sweepAt: _at, ...ended } = parent;
    await put({ ...ended, status: "succeeded", active: 0 });
    await lookAtItems(parent, NOW);
    const stored = await parentAsStored(runId);
    expect(stored.sweepAt).toBeUndefined();
    expect(stored.sweepShard).toBeUndefined();
  });

  it("takes a cancelled task whose items are all counted out of the sweeper's index, and keeps one that has items left", async () => {
    const done = randomUUID();
    await put(parentOf(done, { status: "cancelled", active: 0, countedBelow: 6 }));
    await lookAtItems(parentOf(done, { status: "cancelled", active: 0, countedBelow: 6 }), NOW);
    const retired = await parentAsStored(done);
    expect(retired.sweepShard).toBeUndefined();
    expect(retired.sweepAt).toBeUndefined();
    expect(retired.version).toBe(4);

    const busy = randomUUID();
    const parent = parentOf(busy, { status: "cancelled" });
    await sixItems(busy, parent);
    await lookAtItems(parent, NOW);
    expect((await parentAsStored(busy)).sweepShard).toBe("0");
    expect(sent.map((s) => s.body.item).sort()).toEqual([0, 2]);
  });

  it("re-sends an item queued without its record once the items queued after it are 20 s old, with its record from its chunk", async () => {
    const runId = randomUUID();
    await writeChunks(
      [0, 1, 2, 3].map((i) => itemOf(runId, i, { input: { n: i } })),
      100,
    );
    // the last fill was 5 s ago
    const parent = parentOf(runId, {
      total: 4,
      nextIndex: 4,
      active: 4,
      chunk: 100,
      filledAt: sortId(new Date(at(-5))),
    });
    await put(parent);
    // 1 and 2 were claimed (their records put by their first claims): 1 was queued 40 s ago, 2 3 s ago
    const running = { status: "running" as const, attempt: 1, leaseUntil: at(50) };
    await put(itemOf(runId, 1, { ...running, createdAt: at(-40), input: { n: 1 } }));
    await put(itemOf(runId, 2, { ...running, createdAt: at(-3), input: { n: 2 } }));

    await lookAtItems(parent, NOW);

    // 0 has no record, and was queued no later than 1: its message is sent again, carrying its record
    expect(sent.map((s) => s.body)).toEqual([
      {
        runId,
        task: "each",
        item: 0,
        queued: {
          execution: expect.objectContaining({
            runId,
            task: "each",
            item: 0,
            input: { n: 0 },
            action: "core.noop",
          }),
          queuedAs: `${at(-40)}#0000#00000000`,
        },
      },
    ]);
    expect(sent[0]?.group?.startsWith("own/")).toBe(true);
    // 3, above every record, was queued by the last fill: due 20 s after it, the next look moves up to then
    expect((await parentAsStored(runId)).sweepAt).toBe(at(15));
  });
});
