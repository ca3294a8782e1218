import "../../helpers/unit-env";
import { TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { GetCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { db, sqs } from "../../../lib/clients";
import { countDown } from "../../../lib/engine/fanout";
import type { FanOutRecord } from "../../../lib/engine/task-record";
import type { CompletionMessage } from "../../../lib/queue";

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

describe("countDown", () => {
  it("counts each item once: an item already counted (a duplicate completion) drops out and the rest is retried", async () => {
    dynamo.on(GetCommand).resolves({ Item: parent() });
    dynamo
      .on(TransactWriteCommand)
      .rejectsOnce(cancelled(["None", "ConditionalCheckFailed", "None"])) // item 1 was counted already
      .resolves({});
    await countDown("r1", "each", [done(0), done(1)]);
    const [first, second] = transactions();
    expect(first).toHaveLength(3); // two items + the parent
    expect(second).toHaveLength(2); // item 0 + the parent
    expect(second?.[0]?.Update?.Key?.sk).toBe("ITEM#each#000000");
    expect(second?.[1]?.Update?.ExpressionAttributeValues).toMatchObject({
      ":active": 4,
      ":succeeded": 1,
      ":version": 7,
    });
  });

  it("reads the counters again when another handler moved them (version), never double counting", async () => {
    dynamo
      .on(GetCommand)
      .resolvesOnce({ Item: parent() })
      .resolves({ Item: parent({ version: 8, active: 4, succeededItems: 1 }) });
    dynamo
      .on(TransactWriteCommand)
      .rejectsOnce(cancelled(["None", "ConditionalCheckFailed"]))
      .resolves({});
    await countDown("r1", "each", [done(2)]);
    const last = transactions().at(-1);
    expect(last?.[1]?.Update?.ExpressionAttributeValues).toMatchObject({
      ":version": 8,
      ":active": 3,
      ":succeeded": 2,
    });
  });

  it("settles the task with the last item, in the same transaction, and only then", async () => {
    dynamo.on(GetCommand).resolves({ Item: parent({ active: 1, succeededItems: 4 }) });
    dynamo.on(TransactWriteCommand).resolves({});
    expect(await countDown("r1", "each", [done(4)])).toBe("ended");
    const [tx] = transactions();
    expect(tx?.[0]?.ConditionCheck).toBeDefined(); // the run must still be running
    expect(tx?.[2]?.Update?.ExpressionAttributeValues).toMatchObject({
      ":status": "succeeded",
      ":active": 0,
    });
    // its TaskSucceeded event goes on the parent, by the same write
    expect(tx?.[2]?.Update?.ExpressionAttributeValues?.[":hLog"]).toMatchObject([{ t: "TaskSucceeded" }]);
  });

  it("a failure past the tolerance stops refills and fails the task once nothing is active", async () => {
    dynamo.on(GetCommand).resolves({ Item: parent({ total: 10, nextIndex: 2, active: 2, concurrency: 2 }) });
    dynamo.on(TransactWriteCommand).resolves({});
    expect(await countDown("r1", "each", [done(0, "failed")])).toBe("other"); // no refill: the run was not checked
    const [tx] = transactions();
    // no refill although a slot freed: items 2.. stay pending
    expect(
      tx?.filter(
        (w) => w.Update?.Key?.sk?.startsWith("ITEM#") && w.Update.UpdateExpression?.includes(":queued"),
      ),
    ).toEqual([]);
    expect(tx?.at(-1)?.Update?.ExpressionAttributeValues).toMatchObject({
      ":active": 1,
      ":failed": 1,
      ":nextIndex": 2,
    });
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
      .rejectsOnce(cancelled(["ConditionalCheckFailed", "None", "None", "None", "None"]))
      .resolves({});
    expect(await countDown("r1", "each", [done(0)])).toBe("other");
    const second = transactions()[1];
    expect(second?.some((w) => w.ConditionCheck)).toBe(false);
    expect(second?.filter((w) => w.Update?.UpdateExpression?.includes(":queued"))).toEqual([]);
  });

  it("says `other` when every item was counted already (a duplicate): the caller looks at the whole run", async () => {
    dynamo.on(GetCommand).resolves({ Item: parent() });
    dynamo.on(TransactWriteCommand).rejects(cancelled(["ConditionalCheckFailed", "None"]));
    expect(await countDown("r1", "each", [done(0)])).toBe("other");
  });

  it("never drops a count: endless contention throws, so the completions stay on the queue", async () => {
    dynamo.on(GetCommand).resolves({ Item: parent() });
    dynamo.on(TransactWriteCommand).rejects(cancelled(["None", "ConditionalCheckFailed"]));
    await expect(countDown("r1", "each", [done(3)])).rejects.toThrow(/contention/);
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
});
