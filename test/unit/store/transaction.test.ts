import "../../helpers/unit-env";
import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { PutCommand, TransactWriteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { db } from "../../../lib/clients";
import { eventsOfItem, historyEvent, sortId } from "../../../lib/store/events";
import { keys } from "../../../lib/store/keys";
import {
  reasonAt,
  refusedAt,
  transact,
  WRITE_TOKEN_ATTRIBUTE,
  withHistory,
} from "../../../lib/store/transaction";

const dynamo = mockClient(db());
beforeEach(() => dynamo.reset());

const update = (sk: string, expression = "SET #status = :s") => ({
  Update: {
    TableName: "t",
    Key: { pk: "RUN#r1", sk },
    UpdateExpression: expression,
    ConditionExpression: "#status = :old",
    ExpressionAttributeNames: { "#status": "status" },
    ExpressionAttributeValues: { ":s": "succeeded", ":old": "running" },
  },
});

describe("withHistory: events go on the item their transition writes", () => {
  it("appends an execution's events to its own update, in order, and a run's to the run's put", () => {
    const items = withHistory([
      { Put: { TableName: "t", Item: { ...keys.run("r1"), status: "running" } } },
      historyEvent("r1", "RunStarted"),
      update("TASK#a"),
      historyEvent("r1", "TaskRetrying", { task: "a", attempt: 1 }),
      historyEvent("r1", "TaskStarted", { task: "a", attempt: 2 }),
    ]);
    expect(items).toHaveLength(2);
    expect(items[0]?.Put?.Item?.log).toMatchObject([{ t: "RunStarted" }]);
    const u = items[1]?.Update;
    expect(u?.UpdateExpression).toBe(
      "SET #hLog = list_append(if_not_exists(#hLog, :hNone), :hLog), #status = :s",
    );
    expect(u?.ExpressionAttributeValues?.[":hLog"]).toMatchObject([
      { t: "TaskRetrying", a: 1 },
      { t: "TaskStarted", a: 2 },
    ]);
  });

  it("adds a SET clause to an update that has none", () => {
    const [item] = withHistory([
      update("TASK#a", "REMOVE sweepAt"),
      historyEvent("r1", "TaskCancelled", { task: "a" }),
    ]);
    expect(item?.Update?.UpdateExpression).toBe(
      "SET #hLog = list_append(if_not_exists(#hLog, :hNone), :hLog) REMOVE sweepAt",
    );
  });

  it("refuses an event whose item the call does not write (it would record a transition that did not happen)", () => {
    expect(() => withHistory([update("TASK#a"), historyEvent("r1", "TaskStarted", { task: "b" })])).toThrow(
      /no write of its item/,
    );
  });

  it("reads an item's log back as events with the item's task and index", () => {
    const [item] = withHistory([
      update("ITEM#each#000003"),
      historyEvent(
        "r1",
        "TaskQueued",
        { task: "each", item: 3 },
        sortId(new Date("2026-01-01T00:00:00.000Z")),
      ),
    ]);
    const log = item?.Update?.ExpressionAttributeValues?.[":hLog"];
    const events = eventsOfItem({ sk: "ITEM#each#000003", task: "each", item: 3, log });
    expect(events.map((e) => e.event)).toEqual([
      {
        at: "2026-01-01T00:00:00.000Z",
        type: "TaskQueued",
        task: "each",
        item: 3,
        attempt: undefined,
        detail: undefined,
      },
    ]);
  });
});

describe("transact", () => {
  it("writes a transition of one item as one conditional UpdateItem, not a transaction", async () => {
    dynamo.on(UpdateCommand).resolves({});
    expect(await transact([update("TASK#a"), historyEvent("r1", "TaskSucceeded", { task: "a" })])).toEqual({
      ok: true,
    });
    expect(dynamo.commandCalls(TransactWriteCommand)).toHaveLength(0);
    const sent = dynamo.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(sent?.ReturnValuesOnConditionCheckFailure).toBe("ALL_OLD");
    expect(sent?.ExpressionAttributeValues?.[":wToken"]).toMatch(/^[0-9a-f]{16}$/);
  });

  it("answers a failed condition with the item as it was", async () => {
    const winner = { ...keys.task("r1", "a"), status: "failed", [WRITE_TOKEN_ATTRIBUTE]: "someone-else" };
    dynamo
      .on(UpdateCommand)
      .rejects(new ConditionalCheckFailedException({ message: "no", $metadata: {}, Item: marshall(winner) }));
    expect(await transact([update("TASK#a")])).toEqual({
      ok: false,
      reasons: [{ code: "ConditionalCheckFailed", item: winner, key: keys.task("r1", "a") }],
    });
  });

  it("knows its own write again: an SDK retry after a lost response that fails the condition is a success", async () => {
    dynamo.on(PutCommand).callsFake((input) => {
      // the first send was applied, its response lost; the retry finds the item the first one wrote
      throw new ConditionalCheckFailedException({ message: "no", $metadata: {}, Item: marshall(input.Item) });
    });
    const put = {
      Put: {
        TableName: "t",
        Item: { ...keys.task("r1", "a") },
        ConditionExpression: "attribute_not_exists(pk)",
      },
    };
    expect(await transact([put])).toEqual({ ok: true });
  });

  it("keeps a transaction for a transition of two items, each event in its item", async () => {
    dynamo.on(TransactWriteCommand).resolves({});
    await transact([
      update("RUN"),
      historyEvent("r1", "RunFailed"),
      update("TASK#a"),
      historyEvent("r1", "TaskFailed", { task: "a" }),
    ]);
    const items = dynamo.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(items).toHaveLength(2);
    expect(items.map((i) => i.Update?.ExpressionAttributeValues?.[":hLog"]?.[0]?.t)).toEqual([
      "RunFailed",
      "TaskFailed",
    ]);
  });

  it("names each reason of a refused transaction by its item's key, whatever its place", async () => {
    const found = { ...keys.task("r1", "a"), status: "failed" };
    dynamo.on(TransactWriteCommand).rejects(
      new TransactionCanceledException({
        message: "cancelled",
        $metadata: {},
        CancellationReasons: [{ Code: "None" }, { Code: "ConditionalCheckFailed", Item: marshall(found) }],
      }),
    );
    const outcome = await transact([update("RUN"), update("TASK#a")]);
    if (outcome.ok) throw new Error("the transaction was refused");
    expect(refusedAt(outcome, keys.run("r1"))).toBe(false);
    expect(refusedAt(outcome, keys.task("r1", "a"))).toBe(true);
    expect(reasonAt(outcome, keys.task("r1", "a"))?.item).toEqual(found);
    expect(reasonAt(outcome, keys.task("r1", "b"))).toBeUndefined();
  });
});
