/**
 * The queue adapters' failure branch: a record whose handling failed unexpectedly comes back in
 * seconds (not after the queue's visibility timeout), and so do the records of its message group
 * after it in the batch, which the FIFO batch processor skipped.
 */
import "../../helpers/unit-env";
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { ChangeMessageVisibilityCommand } from "@aws-sdk/client-sqs";
import { GetCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { SQSBatchResponse } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { handler as advanceHandler } from "../../../functions/advance";
import { handler as workerHandler } from "../../../functions/worker";
import { db, sqs } from "../../../lib/clients";
import { lambdaContext, sqsEvent } from "../../helpers/lambda-events";

const dynamo = mockClient(db());
const queue = mockClient(sqs());
beforeEach(() => {
  dynamo.reset();
  queue.reset();
  queue.on(ChangeMessageVisibilityCommand).resolves({});
});

/** Three records: the first two of group `g`, the first received `received` times; the third of `h`. */
function batch(bodies: unknown[], received: number) {
  const event = sqsEvent(bodies);
  const groups = ["g", "g", "h"];
  event.Records.forEach((r, i) => {
    r.attributes.MessageGroupId = groups[i] as string;
  });
  (event.Records[0] as (typeof event.Records)[0]).attributes.ApproximateReceiveCount = String(received);
  return event;
}

const hidden = () =>
  queue.commandCalls(ChangeMessageVisibilityCommand).map((c) => ({
    handle: c.args[0].input.ReceiptHandle,
    seconds: c.args[0].input.VisibilityTimeout,
  }));

describe("worker: a task message whose handling failed", () => {
  it("comes back in 2^(receives - 1) seconds with the rest of its group; other groups go on", async () => {
    const throttled = Object.assign(new Error("rate exceeded"), { name: "ThrottlingException" });
    // the claim is the worker's first call (an update, without reading first)
    dynamo.on(UpdateCommand).callsFake((input) => {
      if (input.Key.sk === "TASK#a") throw throttled;
      // no such execution: the claim is refused with nothing to judge from, nothing to do
      throw new ConditionalCheckFailedException({ message: "refused", $metadata: {} });
    });
    const event = batch(
      [
        { runId: "r1", task: "a" },
        { runId: "r1", task: "a" },
        { runId: "r2", task: "b" },
      ],
      3,
    );
    const response = (await workerHandler(event, lambdaContext)) as SQSBatchResponse;
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(["m0", "m1"]);
    expect(hidden()).toEqual([
      { handle: "rh0", seconds: 4 },
      { handle: "rh1", seconds: 4 },
    ]);
  });

  it("waits at most 10 s however often it failed, and a failed hide leaves the queue's timeout", async () => {
    dynamo.on(GetCommand).rejects(new Error("down"));
    const event = batch([{ runId: "r1", task: "a" }], 12);
    queue.on(ChangeMessageVisibilityCommand).rejects(new Error("sqs down too"));
    const response = (await workerHandler(event, lambdaContext)) as SQSBatchResponse;
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(["m0"]);
    expect(hidden()).toEqual([{ handle: "rh0", seconds: 10 }]);
  });
});

describe("advance: a completion whose run could not be advanced", () => {
  it("comes back in 1 s with the rest of its group", async () => {
    dynamo.on(QueryCommand).rejects(new Error("down"));
    dynamo.on(GetCommand).rejects(new Error("down"));
    const completion = (item: number) => ({
      runId: "r1",
      task: "each",
      item,
      attempt: 1,
      outcome: "succeeded",
    });
    const event = batch([completion(0), completion(1)], 1);
    const response = (await advanceHandler(event, lambdaContext)) as SQSBatchResponse;
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(["m0", "m1"]);
    expect(hidden()).toEqual([
      { handle: "rh0", seconds: 1 },
      { handle: "rh1", seconds: 1 },
    ]);
  });
});

describe("logs", () => {
  it("a failed record's log line names the invocation's request id and the message", async () => {
    dynamo.on(UpdateCommand).rejects(new Error("down"));
    // Powertools' logger writes JSON lines through a console of its own (errors on stderr)
    const lines: string[] = [];
    const capture = (chunk: unknown) => {
      lines.push(String(chunk));
      return true;
    };
    const spies = [
      vi.spyOn(process.stdout, "write").mockImplementation(capture),
      vi.spyOn(process.stderr, "write").mockImplementation(capture),
    ];
    try {
      await workerHandler(batch([{ runId: "r9", task: "z" }], 1), lambdaContext);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    const logged = lines
      .flatMap((l) => l.split("\n"))
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l));
    expect(logged).toContainEqual(
      expect.objectContaining({
        level: "ERROR",
        function_request_id: "req",
        taskMessage: { runId: "r9", task: "z" },
      }),
    );
  });
});
