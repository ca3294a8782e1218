import "../../helpers/unit-env";
import { TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { GetCommand, PutCommand, TransactWriteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
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
  it("a duplicate message of a settled execution writes nothing and runs nothing; it publishes the completion again", async () => {
    dynamo.on(GetCommand).resolves({ Item: record({ status: "succeeded", attempt: 1, output: 1 }) });
    expect(await work({ runId: "r1", task: "a" }, "w1")).toEqual({ done: true });
    expect(action).not.toHaveBeenCalled();
    expect(writes()).toHaveLength(0);
    expect(queue.commandCalls(SendMessageCommand)).toHaveLength(1);
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
    let transactions = 0;
    dynamo.on(TransactWriteCommand).callsFake(() => {
      transactions++;
      if (transactions === 1) return {}; // the claim succeeds
      throw new TransactionCanceledException({
        message: "cancelled",
        $metadata: {},
        CancellationReasons: [{ Code: "ConditionalCheckFailed" }, { Code: "None" }],
      });
    });
    expect(await work({ runId: "r1", task: "a" }, "w1")).toEqual({ done: true });
    expect(action).toHaveBeenCalledTimes(1);
    expect(queue.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it("a retryable failure puts the execution back to queued and asks the message to wait", async () => {
    dynamo.on(GetCommand).resolves({ Item: record({}) });
    dynamo.on(TransactWriteCommand).resolves({});
    action.mockRejectedValueOnce(new Error("flaky"));
    const outcome = await work({ runId: "r1", task: "a" }, "w1");
    expect(outcome).toMatchObject({ done: false });
    const settle = dynamo.commandCalls(TransactWriteCommand)[1]?.args[0].input.TransactItems?.[0]?.Update;
    expect(settle?.ExpressionAttributeValues?.[":queued"]).toBe("queued");
    expect(queue.commandCalls(SendMessageCommand)).toHaveLength(0);
  });
});
