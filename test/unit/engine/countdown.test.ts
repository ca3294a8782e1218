import "../../helpers/unit-env";
import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { GetCommand, TransactWriteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import { db, sqs } from "../../../lib/clients";
import { countDown } from "../../../lib/engine/countdown";
import type { FanOutRecord } from "../../../lib/engine/task-record";
import { ContentionError } from "../../../lib/errors";
import type { CompletionMessage } from "../../../lib/queue";
import { useSleep } from "../../../lib/store/backoff";

const dynamo = mockClient(db());
const queue = mockClient(sqs());
beforeEach(() => {
  dynamo.reset();
  queue.reset();
  queue.on(SendMessageBatchCommand).resolves({});
});

const parent = (fields: Partial<FanOutRecord> = {}): FanOutRecord => ({
  runId: "r1",
  task: "each",
  status: "running",
  fanOut: true,
  total: 5,
  nextIndex: 5,
  active: 5,
  succeededItems: 0,
  failedItems: 0,
  concurrency: 5,
  maxFailures: 0,
  version: 7,
  createdAt: "x",
  ...fields,
});
const done = (item: number, outcome: "succeeded" | "failed" = "succeeded"): CompletionMessage => ({
  runId: "r1",
  task: "each",
  item,
  attempt: 1,
  outcome,
});
const cancelled = (codes: string[]) =>
  new TransactionCanceledException({
    message: "x",
    $metadata: {},
    CancellationReasons: codes.map((Code) => ({ Code })),
  });
const transactions = () =>
  dynamo.commandCalls(TransactWriteCommand).map((c) => c.args[0].input.TransactItems ?? []);
/** Single conditional writes (a transition of the parent alone). */
const updates = () => dynamo.commandCalls(UpdateCommand).map((c) => c.args[0].input);
const conditionFailed = () => new ConditionalCheckFailedException({ message: "x", $metadata: {} });

describe("countDown", () => {
  it("counts each item once: an item its parent already counted (a duplicate completion) drops out", async () => {
    dynamo.on(GetCommand).resolves({ Item: parent({ countedBelow: 0, countedAbove: [1] }) });
    dynamo.on(UpdateCommand).resolves({});
    await countDown("r1", "each", [done(0), done(1)]);
    // no item is written: one update of the parent, conditional on its version, counts item 0
    expect(transactions()).toEqual([]);
    const [update] = updates();
    expect(update?.Key?.sk).toBe("TASK#each");
    expect(update?.ConditionExpression).toBe("version = :version");
    expect(update?.ExpressionAttributeValues).toMatchObject({
      ":active": 4,
      ":succeeded": 1,
      ":version": 7,
      ":below": 2, // 0 and 1 are counted: the set folds into countedBelow
      ":above": [],
    });
  });

  it("reads the counters again when another handler moved them (version), never double counting", async () => {
    dynamo
      .on(GetCommand)
      .resolvesOnce({ Item: parent() })
      .resolves({ Item: parent({ version: 8, active: 4, succeededItems: 1, countedAbove: [3] }) });
    dynamo.on(UpdateCommand).rejectsOnce(conditionFailed()).resolves({});
    await countDown("r1", "each", [done(2)]);
    expect(updates().at(-1)?.ExpressionAttributeValues).toMatchObject({
      ":version": 8,
      ":active": 3,
      ":succeeded": 2,
      ":above": [2, 3],
    });
  });

  it("writes nothing when the handler that moved the version counted the same item", async () => {
    dynamo
      .on(GetCommand)
      .resolvesOnce({ Item: parent() })
      .resolves({ Item: parent({ version: 8, active: 4, succeededItems: 1, countedAbove: [2] }) });
    dynamo.on(UpdateCommand).rejectsOnce(conditionFailed()).resolves({});
    expect(await countDown("r1", "each", [done(2)])).toBe("other");
    expect(updates()).toHaveLength(1); // the one that lost
  });

  it("counts an item queued again after a redrive once, by a completion of that redrive, not a late one from before", async () => {
    // item 1 was put back by redrive 2 and queued again (no longer in `redo`)
    const requeued = parent({ countedBelow: 5, active: 1, putBack: { "1": 2 }, redo: [] });
    dynamo.on(GetCommand).resolves({ Item: requeued });
    dynamo.on(TransactWriteCommand).resolves({});
    dynamo.on(UpdateCommand).resolves({});
    // the earlier incarnation's completion, at the same attempt, delivered late
    expect(await countDown("r1", "each", [done(1, "failed")])).toBe("other");
    expect([...updates(), ...transactions()]).toEqual([]);
    // this incarnation's
    expect(await countDown("r1", "each", [{ ...done(1), redriven: 2 }])).toBe("ended");
    const [tx] = transactions();
    expect(tx?.[1]?.Update?.ExpressionAttributeValues).toMatchObject({ ":putBack": {}, ":succeeded": 1 });
  });

  it("settles the task with the last item, in the same transaction, and only then", async () => {
    dynamo.on(GetCommand).resolves({ Item: parent({ active: 1, succeededItems: 4 }) });
    dynamo.on(TransactWriteCommand).resolves({});
    expect(await countDown("r1", "each", [done(4)])).toBe("ended");
    const [tx] = transactions();
    expect(tx?.[0]?.ConditionCheck).toBeDefined(); // the run must still be running
    expect(tx?.[1]?.Update?.ExpressionAttributeValues).toMatchObject({
      ":status": "succeeded",
      ":active": 0,
    });
    // its TaskSucceeded event goes on the parent, by the same write
    expect(tx?.[1]?.Update?.ExpressionAttributeValues?.[":hLog"]).toMatchObject([{ t: "TaskSucceeded" }]);
  });

  it("a failure past the tolerance stops refills and fails the task once nothing is active", async () => {
    dynamo.on(GetCommand).resolves({ Item: parent({ total: 10, nextIndex: 2, active: 2, concurrency: 2 }) });
    dynamo.on(UpdateCommand).resolves({});
    // no refill, nothing of the graph changed (the task fails once its last item is counted)
    expect(await countDown("r1", "each", [done(0, "failed")])).toBe("deferred");
    // no refill although a slot freed (items 2.. stay pending): the parent's update alone
    expect(transactions()).toEqual([]);
    expect(updates()[0]?.ExpressionAttributeValues).toMatchObject({
      ":active": 1,
      ":failed": 1,
      ":nextIndex": 2,
    });
  });

  it("refills a task with many slots ten at a time: fewer freed slots wait for a later countdown", async () => {
    const many = { total: 1000, concurrency: 100, nextIndex: 100 };
    dynamo.on(GetCommand).resolves({ Item: parent({ ...many, active: 100 }) });
    dynamo.on(UpdateCommand).resolves({});
    dynamo.on(TransactWriteCommand).resolves({});
    // 3 slots free: counted, no refill, no transaction (the run is not checked)
    expect(await countDown("r1", "each", [done(0), done(1), done(2)])).toBe("deferred");
    expect(transactions()).toEqual([]);
    expect(updates()[0]?.ExpressionAttributeValues).toMatchObject({ ":active": 97, ":nextIndex": 100 });
    // 8 slots were free already, 2 more now: the 10 are refilled in one transaction with the run's check
    dynamo.reset();
    dynamo.on(GetCommand).resolves({ Item: parent({ ...many, active: 92, countedBelow: 8 }) });
    dynamo.on(TransactWriteCommand).resolves({});
    expect(await countDown("r1", "each", [done(8), done(9)])).toBe("counted");
    const [tx] = transactions();
    expect(tx?.[0]?.ConditionCheck).toBeDefined();
    expect(tx?.filter((w) => w.Update?.Key?.sk?.toString().startsWith("ITEM#"))).toHaveLength(10);
    // the last items (fewer than ten left: three) are refilled once there is a slot for each
    dynamo.reset();
    dynamo
      .on(GetCommand)
      .resolves({ Item: parent({ ...many, nextIndex: 997, active: 100, countedBelow: 897 }) });
    dynamo.on(TransactWriteCommand).resolves({});
    expect(await countDown("r1", "each", [done(897), done(898), done(899)])).toBe("counted");
    expect(transactions()).toHaveLength(1);
  });

  it("says `counted` when the items are counted, every freed slot refilled and the parent still running", async () => {
    dynamo.on(GetCommand).resolves({ Item: parent({ total: 10, nextIndex: 5 }) });
    dynamo.on(TransactWriteCommand).resolves({});
    const now = new Date("2026-01-01T00:00:00Z");
    expect(await countDown("r1", "each", [done(0), done(1)], now)).toBe("counted");
    const [tx] = transactions();
    // the refill holds only while the run runs and its deadline is ahead
    expect(tx?.[0]?.ConditionCheck?.ConditionExpression).toContain("deadline > :now");
    expect(tx?.[0]?.ConditionCheck?.ExpressionAttributeValues).toMatchObject({ ":now": now.toISOString() });
  });

  it("says `other` when the run stopped (or passed its deadline) before the refill: counts without refilling", async () => {
    dynamo.on(GetCommand).resolves({ Item: parent({ total: 10, nextIndex: 5 }) });
    dynamo
      .on(TransactWriteCommand)
      .rejectsOnce(cancelled(["ConditionalCheckFailed", "None", "None"]))
      .resolves({});
    dynamo.on(UpdateCommand).resolves({});
    expect(await countDown("r1", "each", [done(0)])).toBe("other");
    // counted again without the run's check and without a refill: the parent's update alone
    expect(transactions()).toHaveLength(1);
    expect(updates()).toHaveLength(1);
    expect(updates()[0]?.ExpressionAttributeValues).toMatchObject({ ":active": 4, ":nextIndex": 5 });
  });

  it("says `other` when every item was counted already (a duplicate): the caller looks at the whole run", async () => {
    dynamo.on(GetCommand).resolves({ Item: parent({ countedBelow: 1 }) });
    expect(await countDown("r1", "each", [done(0)])).toBe("other");
    expect([...updates(), ...transactions()]).toEqual([]); // a duplicate writes nothing (I7)
  });

  it("never drops a count: endless contention throws, so the completions stay on the queue", async () => {
    dynamo.on(GetCommand).resolves({ Item: parent() });
    dynamo.on(UpdateCommand).rejects(conditionFailed());
    const pauses: number[] = [];
    const restoreSleep = useSleep(async (ms) => {
      pauses.push(ms); // the backoff between tries, not slept
    });
    try {
      const error = await countDown("r1", "each", [done(3)]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ContentionError);
      expect((error as ContentionError).message).toMatch(/contention/);
      expect(updates()).toHaveLength(20); // every try wrote the parent, and lost
      expect(pauses).toHaveLength(19);
    } finally {
      restoreSleep();
    }
  });

  it("drops a late duplicate of an item a redrive put back: it is counted, and the refill may queue it", async () => {
    // items 1 and 2 failed, were counted and put back (`redo`); a duplicate of item 1's failure comes late
    dynamo
      .on(GetCommand)
      .resolves({ Item: parent({ active: 0, redo: [1, 2], failedItems: 0, maxFailures: 1 }) });
    dynamo.on(TransactWriteCommand).resolves({});
    expect(await countDown("r1", "each", [done(1, "failed")])).toBe("other");
    // nothing to count, so no transaction: one that counted it would also have queued it again (real
    // DynamoDB rejects two operations on one item before judging any condition; DynamoDB Local does not)
    expect(transactions()).toEqual([]);
  });

  it("counts a look's batch of more completions than a transaction takes refills, and refills what fits", async () => {
    // the sweeper's look found 87 settled items not counted (their completions lost, or held by an
    // advance that died) in a window of 100: once, 40 - 87 slots were "refilled", taking 47 slots away
    // for good (active went below zero and the task waited forever for items that never came)
    dynamo
      .on(GetCommand)
      .resolves({ Item: parent({ total: 1000, nextIndex: 416, active: 100, concurrency: 100 }) });
    dynamo.on(TransactWriteCommand).resolves({});
    await countDown(
      "r1",
      "each",
      Array.from({ length: 87 }, (_, i) => done(316 + i)),
    );
    const [tx] = transactions();
    const update = tx?.find((i) => i.Update?.Key?.sk === "TASK#each")?.Update;
    expect(update?.ExpressionAttributeValues).toMatchObject({
      ":active": 100 - 87 + 40,
      ":nextIndex": 416 + 40,
      ":succeeded": 87,
    });
    // the 40 refilled items queued in the same transaction
    expect(tx?.filter((i) => i.Update?.Key?.sk?.startsWith("ITEM#"))).toHaveLength(40);
  });

  it("keeps active = queued - counted, within 0..concurrency, whatever the batch of completions", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 200 }), // concurrency
        fc.integer({ min: 1, max: 500 }), // total
        fc.integer({ min: 0, max: 1000 }), // how many were queued (capped below)
        fc.integer({ min: 0, max: 1000 }), // how many of them are counted (capped below)
        fc.integer({ min: 1, max: 200 }), // how many complete now (capped below)
        async (concurrency, total, queuedSeed, countedSeed, completingSeed) => {
          const counted = countedSeed % (Math.min(total, queuedSeed) + 1);
          const queued = Math.min(total, counted + concurrency, Math.max(counted, queuedSeed));
          const active = queued - counted;
          if (active === 0) return;
          const completing = 1 + (completingSeed % active);
          dynamo.reset();
          queue.reset();
          queue.on(SendMessageBatchCommand).resolves({});
          const before = parent({
            total,
            concurrency,
            nextIndex: queued,
            active,
            countedBelow: counted,
            succeededItems: counted,
          });
          dynamo.on(GetCommand).resolves({ Item: before });
          dynamo.on(TransactWriteCommand).resolves({});
          dynamo.on(UpdateCommand).resolves({});
          await countDown(
            "r1",
            "each",
            Array.from({ length: completing }, (_, i) => done(counted + i)),
          );
          const written = [...transactions().flatMap((tx) => tx.map((i) => i.Update)), ...updates()].find(
            (u) => u?.Key?.sk === "TASK#each",
          )?.ExpressionAttributeValues as Record<string, number>;
          const after = { active: written[":active"] as number, next: written[":nextIndex"] as number };
          expect(after.active).toBe(after.next - (counted + completing));
          expect(after.active).toBeGreaterThanOrEqual(0);
          expect(after.active).toBeLessThanOrEqual(concurrency);
          expect(after.next).toBeLessThanOrEqual(total);
        },
      ),
      { numRuns: 300 },
    );
  });
});
