/**
 * The sweeper adapter's branches: the schedule only kicks; a tick another chain holds sweeps
 * nothing; a pass goes on past an item whose handling failed, and the failure is counted (and
 * logged), not thrown.
 */
import "../../helpers/unit-env";
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { SendMessageBatchCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { GetCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { ScheduledEvent } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { handler } from "../../../functions/sweeper";
import { db, sqs } from "../../../lib/clients";
import { lambdaContext, sqsEvent } from "../../helpers/lambda-events";

const dynamo = mockClient(db());
const queue = mockClient(sqs());
const past = new Date(Date.now() - 60_000).toISOString();
beforeEach(() => {
  dynamo.reset();
  queue.reset();
  queue.on(SendMessageCommand).resolves({});
  queue.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
});

const tick = () => sqsEvent([{ due: past }]);

describe("sweeper", () => {
  it("on the schedule, only sends a kick (a tick without due, at once): no write, no sweep", async () => {
    expect(await handler({ source: "aws.events" } as ScheduledEvent, lambdaContext)).toEqual({
      kicked: true,
    });
    expect(dynamo.calls()).toHaveLength(0);
    const sent = queue.commandCalls(SendMessageCommand).map((c) => c.args[0].input);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ QueueUrl: "http://q/sweep", DelaySeconds: 0, MessageBody: "{}" });
  });

  it("drops a tick when another chain holds the tick item, and sweeps nothing", async () => {
    dynamo.on(UpdateCommand).rejects(new ConditionalCheckFailedException({ message: "held", $metadata: {} }));
    expect(await handler(tick(), lambdaContext)).toEqual({ skipped: true });
    expect(dynamo.commandCalls(QueryCommand)).toHaveLength(0);
    expect(queue.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it("sends the next tick, re-sends in a group of its own, and goes on past an item that failed", async () => {
    dynamo.on(UpdateCommand).resolves({});
    dynamo.on(QueryCommand).resolves({ Items: [] });
    dynamo.on(QueryCommand, { ExpressionAttributeValues: { ":shard": "0" } }).resolves({
      Items: [
        { pk: "RUN#a", sk: "TASK#t", sweepShard: "0", sweepAt: past },
        { pk: "RUN#b", sk: "TASK#t", sweepShard: "0", sweepAt: past },
      ],
    });
    dynamo.on(GetCommand, { Key: { pk: "RUN#a", sk: "TASK#t" } }).rejects(new Error("throttled"));
    dynamo.on(GetCommand, { Key: { pk: "RUN#b", sk: "TASK#t" } }).resolves({
      Item: { pk: "RUN#b", sk: "TASK#t", runId: "b", task: "t", status: "queued", attempt: 0, sweepAt: past },
    });
    const result = await handler(sqsEvent([{}]), lambdaContext); // a kick that finds the chain dead
    expect(result).toEqual({ acted: 1, overdue: 2, failed: 1 });
    const next = queue.commandCalls(SendMessageCommand)[0]?.args[0].input;
    expect(next?.QueueUrl).toBe("http://q/sweep");
    expect(next?.DelaySeconds).toBe(5);
    // b's message went to a group of its own, and b's next look was postponed from what was seen
    const resent = queue.commandCalls(SendMessageBatchCommand)[0]?.args[0].input.Entries?.[0];
    expect(JSON.parse(resent?.MessageBody ?? "{}")).toEqual({ runId: "b", task: "t" });
    expect(resent?.MessageGroupId).toMatch(/^own\//);
    const postponed = dynamo
      .commandCalls(UpdateCommand)
      .map((c) => c.args[0].input)
      .find((i) => i.Key?.pk === "RUN#b");
    expect(postponed?.ExpressionAttributeValues?.[":seen"]).toBe(past);
  });
});
