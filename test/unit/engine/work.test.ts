import "../../helpers/unit-env";
import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
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

describe("work (worker core)", () => {
  it("a duplicate message of a settled item writes nothing and runs nothing; it publishes the completion again", async () => {
    dynamo.on(GetCommand).resolves({ Item: record({ item: 3, status: "succeeded", attempt: 1, output: 1 }) });
    expect(await work({ runId: "r1", task: "a", item: 3 }, "w1")).toEqual({ done: true });
    expect(action).not.toHaveBeenCalled();
    expect(writes()).toHaveLength(0);
    expect(queue.commandCalls(SendMessageCommand)).toHaveLength(1);
  });

  it("a duplicate message of a settled plain task advances the run again instead of publishing: no write, no message", async () => {
    dynamo.on(GetCommand).resolves({ Item: record({ status: "succeeded", attempt: 1, output: 1 }) });
    // the run has ended meanwhile: advancing it finds nothing to do
    dynamo
      .on(QueryCommand)
      .resolves({ Items: [{ pk: "RUN#r1", sk: "RUN", runId: "r1", status: "succeeded" }] });
    expect(await work({ runId: "r1", task: "a" }, "w1")).toEqual({ done: true });
    expect(action).not.toHaveBeenCalled();
    expect(writes()).toHaveLength(0);
    expect(dynamo.commandCalls(QueryCommand)).toHaveLength(1);
    expect(queue.calls()).toHaveLength(0);
  });

  it("a message for an execution another worker holds (live lease) waits for the lease, without running", async () => {
    const leaseUntil = new Date(Date.now() + 20_000).toISOString();
    dynamo.on(GetCommand).resolves({ Item: record({ status: "running", attempt: 1, leaseUntil }) });
    const outcome = await work({ runId: "r1", task: "a" }, "w2");
    expect(outcome.done).toBe(false);
    expect(action).not.toHaveBeenCalled();
    expect(writes()).toHaveLength(0);
  });

  it("losing the claim race judges from the winner's state (ALL_OLD) and does not run the action", async () => {
    dynamo.on(GetCommand).resolves({ Item: record({}) });
    const winner = record({
      status: "running",
      attempt: 1,
      leaseUntil: new Date(Date.now() + 60_000).toISOString(),
    });
    dynamo.on(TransactWriteCommand).rejects(
      new TransactionCanceledException({
        message: "cancelled",
        $metadata: {},
        CancellationReasons: [
          { Code: "None" },
          { Code: "ConditionalCheckFailed", Item: marshall(winner) },
          { Code: "None" },
        ],
      }),
    );
    const outcome = await work({ runId: "r1", task: "a" }, "w2");
    expect(outcome.done).toBe(false);
    expect(action).not.toHaveBeenCalled();
    expect(dynamo.commandCalls(GetCommand)).toHaveLength(1);
  });

  it("a zombie whose attempt was superseded records nothing and publishes no completion (I8)", async () => {
    dynamo.on(GetCommand).resolves({ Item: record({}) });
    dynamo.on(TransactWriteCommand).resolves({}); // the claim (with its run check) succeeds
    // the result write (one item: a single conditional update) finds a newer attempt
    const newer = record({ status: "running", attempt: 2 });
    dynamo
      .on(UpdateCommand)
      .rejects(
        new ConditionalCheckFailedException({ message: "failed", $metadata: {}, Item: marshall(newer) }),
      );
    expect(await work({ runId: "r1", task: "a" }, "w1")).toEqual({ done: true });
    expect(action).toHaveBeenCalledTimes(1);
    expect(dynamo.commandCalls(UpdateCommand)).toHaveLength(1);
    expect(dynamo.commandCalls(QueryCommand)).toHaveLength(0); // nothing advanced
    expect(queue.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it("a retryable failure puts the execution back to queued and asks the message to wait", async () => {
    dynamo.on(GetCommand).resolves({ Item: record({}) });
    dynamo.on(TransactWriteCommand).resolves({});
    dynamo.on(UpdateCommand).resolves({});
    action.mockRejectedValueOnce(new Error("flaky"));
    const outcome = await work({ runId: "r1", task: "a" }, "w1");
    expect(outcome).toMatchObject({ done: false });
    const settle = dynamo.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(settle?.ExpressionAttributeValues?.[":queued"]).toBe("queued");
    // its TaskRetrying event is appended to the execution's own log by the same write
    expect(settle?.ExpressionAttributeValues?.[":hLog"]).toMatchObject([{ t: "TaskRetrying", a: 1 }]);
    expect(queue.commandCalls(SendMessageCommand)).toHaveLength(0);
  });
});
