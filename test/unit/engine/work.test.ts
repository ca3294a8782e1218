import "../../helpers/unit-env";
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { registerAction } from "../../../lib/actions/registry";
import { db, sqs } from "../../../lib/clients";
import { CLAIM_AS_READ, QUEUED_CLAIM } from "../../../lib/engine/claim";
import type { TaskRecord } from "../../../lib/engine/task-record";
import { work } from "../../../lib/engine/work";

const dynamo = mockClient(db());
const queue = mockClient(sqs());
const action = vi.fn(async () => ({ done: true }));
registerAction("test.count", action);

beforeEach(() => {
  dynamo.reset();
  queue.reset();
  action.mockClear();
  queue.on(SendMessageCommand).resolves({});
});

const record = (fields: Partial<TaskRecord>): TaskRecord => ({
  runId: "r1",
  task: "a",
  status: "queued",
  attempt: 0,
  action: "test.count",
  input: null,
  timeoutSeconds: 5,
  retry: { maxAttempts: 3, intervalSeconds: 1, backoffRate: 2 },
  createdAt: new Date().toISOString(),
  ...fields,
});

const writes = () =>
  dynamo
    .calls()
    .filter((c) => [TransactWriteCommand, UpdateCommand, PutCommand].some((t) => c.args[0] instanceof t));

/** The claim's refusal, with the execution as it is (ALL_OLD). */
const refused = (item: TaskRecord) =>
  new ConditionalCheckFailedException({ message: "refused", $metadata: {}, Item: marshall(item) });
/** The claim's success: the execution as written (ALL_NEW). */
const claimedAs = (fields: Partial<TaskRecord>) => ({
  Attributes: record({
    status: "running",
    attempt: 1,
    leaseUntil: new Date(Date.now() + 30_000).toISOString(),
    workerId: "w1",
    ...fields,
  }),
});
const runIs = (status: string) => ({ Item: { pk: "RUN#r1", sk: "RUN", runId: "r1", status } });
const updates = () => dynamo.commandCalls(UpdateCommand).map((c) => c.args[0].input);

describe("work (worker core)", () => {
  it("claims without reading first: one conditional update on the attempt the message names, then the run read", async () => {
    dynamo.on(UpdateCommand).resolvesOnce(claimedAs({})).resolves({});
    dynamo.on(GetCommand).resolves(runIs("running"));
    dynamo.on(QueryCommand).resolves({ Items: [] });
    expect(await work({ runId: "r1", task: "a" }, "w1")).toEqual({ done: true });
    expect(action).toHaveBeenCalledTimes(1);
    const [claim] = updates();
    expect(claim?.ConditionExpression).toBe(QUEUED_CLAIM);
    expect(claim?.ExpressionAttributeValues).toMatchObject({ ":seen": 0, ":attempt": 1 });
    expect(claim?.ExpressionAttributeValues?.[":hLog"]).toMatchObject([{ t: "TaskStarted", a: 1 }]);
    // the only read is the run's, after the claim
    expect(dynamo.commandCalls(GetCommand).map((c) => c.args[0].input.Key?.sk)).toEqual(["RUN"]);
  });

  it("a duplicate message of a settled item writes nothing and runs nothing; it publishes the completion again", async () => {
    dynamo
      .on(UpdateCommand)
      .rejects(refused(record({ item: 3, status: "succeeded", attempt: 1, output: 1 })));
    expect(await work({ runId: "r1", task: "a", item: 3 }, "w1")).toEqual({ done: true });
    expect(action).not.toHaveBeenCalled();
    expect(writes()).toHaveLength(1); // the refused claim: nothing written
    expect(queue.commandCalls(SendMessageCommand)).toHaveLength(1);
  });

  it("a duplicate message of a settled plain task advances the run again instead of publishing: no write, no message", async () => {
    dynamo.on(UpdateCommand).rejects(refused(record({ status: "succeeded", attempt: 1, output: 1 })));
    // the run has ended meanwhile: advancing it finds nothing to do
    dynamo.on(QueryCommand).resolves({ Items: [runIs("succeeded").Item] });
    expect(await work({ runId: "r1", task: "a" }, "w1")).toEqual({ done: true });
    expect(action).not.toHaveBeenCalled();
    expect(writes()).toHaveLength(1); // the refused claim
    expect(dynamo.commandCalls(QueryCommand)).toHaveLength(1);
    expect(queue.calls()).toHaveLength(0);
  });

  it("a message for an execution another worker holds (live lease) waits for the lease, judged from ALL_OLD without a read", async () => {
    const leaseUntil = new Date(Date.now() + 20_000).toISOString();
    dynamo.on(UpdateCommand).rejects(refused(record({ status: "running", attempt: 1, leaseUntil })));
    const outcome = await work({ runId: "r1", task: "a" }, "w2");
    expect(outcome.done).toBe(false);
    expect(action).not.toHaveBeenCalled();
    expect(writes()).toHaveLength(1);
    expect(dynamo.commandCalls(GetCommand)).toHaveLength(0);
  });

  it("a message behind its execution (a retry now due) claims the attempt it finds, with a second write and no read", async () => {
    const due = new Date(Date.now() - 1000).toISOString();
    dynamo
      .on(UpdateCommand)
      .rejectsOnce(refused(record({ status: "queued", attempt: 1, notBefore: due })))
      .resolvesOnce(claimedAs({ attempt: 2 }))
      .resolves({});
    dynamo.on(GetCommand).resolves(runIs("running"));
    dynamo.on(QueryCommand).resolves({ Items: [] });
    await work({ runId: "r1", task: "a" }, "w1");
    expect(updates()[1]?.ConditionExpression).toBe(CLAIM_AS_READ.queued);
    expect(updates()[1]?.ExpressionAttributeValues).toMatchObject({ ":seen": 1, ":attempt": 2 });
    expect(action).toHaveBeenCalledTimes(1);
  });

  it("an attempt claimed in a run that was cancelled meanwhile is cancelled at once; its action never runs", async () => {
    dynamo
      .on(UpdateCommand)
      .resolvesOnce(claimedAs({ item: 2 }))
      .resolves({});
    dynamo.on(GetCommand).resolves(runIs("cancelled"));
    expect(await work({ runId: "r1", task: "a", item: 2 }, "w1")).toEqual({ done: true });
    expect(action).not.toHaveBeenCalled();
    const cancel = updates()[1];
    expect(cancel?.ConditionExpression).toBe(
      "#status = :running AND attempt = :attempt AND workerId = :worker",
    );
    expect(cancel?.ExpressionAttributeValues?.[":hLog"]).toMatchObject([
      { t: "TaskCancelled", a: 1, d: { reason: "RunNotRunning" } },
    ]);
    // its completion goes out as any other, so that its with-items task counts it
    const sent = JSON.parse(String(queue.commandCalls(SendMessageCommand)[0]?.args[0].input.MessageBody));
    expect(sent).toMatchObject({ item: 2, attempt: 1, outcome: "cancelled" });
  });

  it("a zombie whose attempt was superseded records nothing and publishes no completion (I8)", async () => {
    // the result write (one item: a single conditional update) finds a newer attempt
    const newer = record({ status: "running", attempt: 2 });
    dynamo.on(UpdateCommand).resolvesOnce(claimedAs({})).rejects(refused(newer));
    dynamo.on(GetCommand).resolves(runIs("running"));
    expect(await work({ runId: "r1", task: "a" }, "w1")).toEqual({ done: true });
    expect(action).toHaveBeenCalledTimes(1);
    expect(updates()).toHaveLength(2);
    expect(dynamo.commandCalls(QueryCommand)).toHaveLength(0); // nothing advanced
    expect(queue.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it("a retryable failure puts the execution back to queued and asks the message to wait", async () => {
    dynamo.on(UpdateCommand).resolvesOnce(claimedAs({})).resolves({});
    dynamo.on(GetCommand).resolves(runIs("running"));
    action.mockRejectedValueOnce(new Error("flaky"));
    const outcome = await work({ runId: "r1", task: "a" }, "w1");
    expect(outcome).toMatchObject({ done: false });
    const settle = updates()[1];
    expect(settle?.ExpressionAttributeValues?.[":queued"]).toBe("queued");
    // its TaskRetrying event is appended to the execution's own log by the same write
    expect(settle?.ExpressionAttributeValues?.[":hLog"]).toMatchObject([{ t: "TaskRetrying", a: 1 }]);
    expect(queue.commandCalls(SendMessageCommand)).toHaveLength(0);
  });
});
