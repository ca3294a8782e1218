/**
 * The local stack itself, with fixture handlers in place of functions/: the HTTP API builds payload
 * 2.0 events and shapes responses like API Gateway; the pollers deliver real SQS batches, delete
 * only what succeeded and let FIFO deduplication work; the schedule fires; stop() leaves nothing.
 */
import { execFileSync } from "node:child_process";
import { connect } from "node:net";
import { GetQueueAttributesCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import type { APIGatewayProxyEventV2, Context, ScheduledEvent, SQSEvent, SQSRecord } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { startHttpGateway } from "../../infra/local/http-gateway";
import { type LocalLog, silentLog } from "../../infra/local/log";
import type { CreatedQueue } from "../../infra/local/resources";
import { startLocalStack } from "../../infra/local/stack";
import { callApi, uniqueStage, useLocalStack } from "../helpers/stack";

interface Delivery {
  fn: string;
  record: SQSRecord;
  at: number;
}

const deliveries: Delivery[] = [];
const scheduled: ScheduledEvent[] = [];
const contexts: Context[] = [];
/** What the stack logged as warnings and errors (fixtures crash on purpose). */
const logged: string[] = [];
const captureLog: LocalLog = {
  debug: () => {},
  info: () => {},
  warn: (message) => logged.push(message),
  error: (message, error) => logged.push(`${message}: ${error instanceof Error ? error.message : ""}`),
};

/** Fails (reports) or throws on the first receive of records whose body asks for it. */
function sqsFixture(fn: string) {
  return async (event: SQSEvent, context: Context) => {
    contexts.push(context);
    const failures: { itemIdentifier: string }[] = [];
    for (const record of event.Records) {
      deliveries.push({ fn, record, at: Date.now() });
      const first = record.attributes.ApproximateReceiveCount === "1";
      if (record.body === "throw-once" && first) throw new Error("fixture: crash on the first delivery");
      if (record.body === "fail-once" && first) failures.push({ itemIdentifier: record.messageId });
    }
    return { batchItemFailures: failures };
  };
}

const fixture = useLocalStack({
  handlers: {
    api: async (event: APIGatewayProxyEventV2, context: Context) => {
      contexts.push(context);
      if (event.pathParameters?.runId === "crash") throw new Error("fixture: the api crashed");
      if (event.pathParameters?.runId === "plain") return { plain: true };
      return {
        statusCode: event.requestContext.http.method === "PUT" ? 201 : 200,
        headers: { "X-Fixture": "api", "content-type": "application/json" },
        cookies: ["session=abc; Path=/"],
        body: JSON.stringify({ event }),
      };
    },
    worker: sqsFixture("worker"),
    advance: sqsFixture("advance"),
    sweeper: async (event: ScheduledEvent) => {
      scheduled.push(event);
    },
  },
  queueAttributeOverrides: { VisibilityTimeout: "2" },
  scheduleIntervalMs: 200,
  log: captureLog,
});

const queue = (logicalId: string) => fixture.stack.resources[logicalId] as CreatedQueue;

async function send(logicalId: string, body: string, group: string, dedupId: string) {
  return await fixture.stack.clients.sqs.send(
    new SendMessageCommand({
      QueueUrl: queue(logicalId).url,
      MessageBody: body,
      MessageGroupId: group,
      MessageDeduplicationId: dedupId,
      MessageAttributes: { kind: { DataType: "String", StringValue: "test" } },
    }),
  );
}

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function queueIsEmpty(logicalId: string): Promise<boolean> {
  const { Attributes } = await fixture.stack.clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queue(logicalId).url,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  return (
    Attributes?.ApproximateNumberOfMessages === "0" &&
    Attributes.ApproximateNumberOfMessagesNotVisible === "0"
  );
}

describe("resources and environment", () => {
  it("creates the tables and queues of serverless.yml under the file's stage", () => {
    const { stack } = fixture;
    expect(Object.keys(stack.resources).sort()).toEqual([
      "CompletionsDeadLetterQueue",
      "CompletionsQueue",
      "OnceflowTable",
      "SweepQueue",
      "TasksDeadLetterQueue",
      "TasksQueue",
    ]);
    expect(stack.resources.OnceflowTable?.name).toBe(`onceflow-${stack.stage}`);
    expect(queue("TasksQueue").name).toBe(`onceflow-${stack.stage}-tasks.fifo`);
    expect(stack.env.TABLE_NAME).toBe(`onceflow-${stack.stage}`);
    expect(stack.env.TASKS_QUEUE_URL).toBe(queue("TasksQueue").url);
    expect(process.env.COMPLETIONS_QUEUE_URL).toBe(queue("CompletionsQueue").url);
    expect(process.env.AWS_ENDPOINT_URL_DYNAMODB).toBe(stack.endpoints.dynamodb);
    // The queues' own origin (sqs.us-east-1.localhost:PORT), on the emulator's port.
    expect(new URL(process.env.AWS_ENDPOINT_URL_SQS ?? "").origin).toBe(
      new URL(queue("TasksQueue").url).origin,
    );
    expect(new URL(process.env.AWS_ENDPOINT_URL_SQS ?? "").port).toBe(new URL(stack.endpoints.sqs).port);
    expect(process.env.AWS_REGION).toBe("us-east-1");
  });

  it("sets the redrive policy to the dead-letter queue's ARN", async () => {
    const { Attributes } = await fixture.stack.clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queue("TasksQueue").url, AttributeNames: ["All"] }),
    );
    expect(Attributes?.FifoQueue).toBe("true");
    expect(Attributes?.VisibilityTimeout).toBe("2");
    const declared = fixture.stack.config.resources.Resources.TasksQueue?.Properties?.RedrivePolicy as
      | { maxReceiveCount?: number }
      | undefined;
    expect(JSON.parse(Attributes?.RedrivePolicy ?? "{}")).toEqual({
      deadLetterTargetArn: queue("TasksDeadLetterQueue").arn,
      maxReceiveCount: declared?.maxReceiveCount,
    });
  });
});

describe("HTTP API", () => {
  it("builds a payload 2.0 event for a matched route and returns the handler's response", async () => {
    const response = await fixture.api(
      "PUT",
      "/workflows/my%20flow?x=1&x=2&y=z%20z",
      { hello: "world" },
      { "X-Custom": "Yes", Cookie: "a=1; b=2", "User-Agent": "vitest" },
    );
    expect(response.status).toBe(201);
    expect(response.headers.get("x-fixture")).toBe("api");
    expect(response.headers.get("set-cookie")).toBe("session=abc; Path=/");
    expect(response.headers.get("apigw-requestid")).toBeTruthy();
    const event = response.body.event as APIGatewayProxyEventV2;
    expect(event).toMatchObject({
      version: "2.0",
      routeKey: "PUT /workflows/{name}",
      rawPath: "/workflows/my%20flow",
      rawQueryString: "x=1&x=2&y=z%20z",
      cookies: ["a=1", "b=2"],
      queryStringParameters: { x: "1,2", y: "z z" },
      pathParameters: { name: "my flow" },
      body: '{"hello":"world"}',
      isBase64Encoded: false,
      requestContext: {
        accountId: "000000000000",
        domainName: "127.0.0.1",
        http: {
          method: "PUT",
          path: "/workflows/my%20flow",
          protocol: "HTTP/1.1",
          sourceIp: "127.0.0.1",
          userAgent: "vitest",
        },
        routeKey: "PUT /workflows/{name}",
        stage: "$default",
      },
    });
    expect(event.headers["x-custom"]).toBe("Yes");
    expect(event.headers["content-type"]).toBe("application/json");
    expect(event.headers.cookie).toBeUndefined();
    expect(event.headers.host).toBe(new URL(fixture.apiUrl).host);
    expect(event.requestContext.timeEpoch).toBeGreaterThan(Date.now() - 60_000);
    expect(event.requestContext.time).toMatch(/^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
    expect(event.requestContext.requestId).toBe(response.headers.get("apigw-requestid"));
  });

  it("routes unknown paths and methods to $default", async () => {
    const unknown = await fixture.api("GET", "/nowhere/at/all");
    expect(unknown.status).toBe(200);
    expect(unknown.body.event.routeKey).toBe("$default");
    expect(unknown.body.event.pathParameters).toBeUndefined();
    expect(unknown.body.event.queryStringParameters).toBeUndefined();
    const wrongMethod = await fixture.api("DELETE", "/workflows/x");
    expect(wrongMethod.body.event.routeKey).toBe("$default");
  });

  it("passes non-text bodies base64-encoded", async () => {
    const bytes = Uint8Array.from([0, 1, 2, 250, 255]);
    const response = await fixture.api("POST", "/workflows/x/runs", bytes, {
      "content-type": "application/octet-stream",
    });
    const event = response.body.event as APIGatewayProxyEventV2;
    expect(event.isBase64Encoded).toBe(true);
    expect([...Buffer.from(event.body ?? "", "base64")]).toEqual([...bytes]);
  });

  it("answers 500 without details when the handler throws, and 200 JSON for a plain value", async () => {
    const crash = await fixture.api("GET", "/runs/crash");
    expect(crash.status).toBe(500);
    expect(crash.body).toEqual({ message: "Internal Server Error" });
    expect(crash.text).not.toContain("fixture");
    expect(logged).toContain("GET /runs/crash (api) threw: fixture: the api crashed");
    const plain = await fixture.api("GET", "/runs/plain");
    expect(plain.status).toBe(200);
    expect(plain.headers.get("content-type")).toBe("application/json");
    expect(plain.body).toEqual({ plain: true });
  });

  it("gives handlers a Lambda context for their function", async () => {
    contexts.length = 0;
    await fixture.api("GET", "/health");
    const context = contexts.at(-1);
    expect(context?.functionName).toBe(`onceflow-${fixture.stack.stage}-api`);
    expect(context?.invokedFunctionArn).toBe(
      `arn:aws:lambda:us-east-1:000000000000:function:onceflow-${fixture.stack.stage}-api`,
    );
    expect(context?.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    const remaining = context?.getRemainingTimeInMillis() ?? 0;
    expect(remaining).toBeGreaterThan(25_000);
    expect(remaining).toBeLessThanOrEqual(29_000);
  });

  it("answers 404 like API Gateway when no route matches and there is no $default", async () => {
    const gateway = await startHttpGateway({
      routes: [
        {
          routeKey: "GET /only",
          fn: { service: "s", stage: "t", region: "us-east-1", name: "f", timeout: 3, memorySize: 128 },
          handler: async () => ({ statusCode: 204 }),
        },
      ],
      log: silentLog,
    });
    try {
      expect((await callApi(gateway.url, "GET", "/only")).status).toBe(204);
      const missing = await callApi(gateway.url, "GET", "/other");
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({ message: "Not Found" });
    } finally {
      await gateway.close();
    }
  });
});

describe("SQS pollers", () => {
  it("delivers real SQS records to the function of the queue", async () => {
    const sent = await send("TasksQueue", "plain", "g-shape", "d-shape");
    const delivery = await until(() => deliveries.find((d) => d.record.messageId === sent.MessageId));
    expect(delivery.fn).toBe("worker");
    const { record } = delivery;
    expect(record).toMatchObject({
      body: "plain",
      eventSource: "aws:sqs",
      eventSourceARN: queue("TasksQueue").arn,
      awsRegion: "us-east-1",
      md5OfBody: sent.MD5OfMessageBody,
      messageAttributes: { kind: { dataType: "String", stringValue: "test" } },
      attributes: {
        ApproximateReceiveCount: "1",
        MessageGroupId: "g-shape",
        MessageDeduplicationId: "d-shape",
        SequenceNumber: expect.any(String),
        SentTimestamp: expect.stringMatching(/^\d+$/),
        SenderId: expect.any(String),
        ApproximateFirstReceiveTimestamp: expect.stringMatching(/^\d+$/),
      },
    });
    expect(record.receiptHandle).toBeTruthy();
    await until(() => queueIsEmpty("TasksQueue").then((empty) => empty || undefined));
  });

  it("deletes successes and lets a record in batchItemFailures come back", async () => {
    const ok = await send("TasksQueue", "ok", "g-partial-1", "d-partial-ok");
    const failing = await send("TasksQueue", "fail-once", "g-partial-2", "d-partial-fail");
    const retried = await until(() =>
      deliveries.find(
        (d) =>
          d.record.messageId === failing.MessageId && d.record.attributes.ApproximateReceiveCount === "2",
      ),
    );
    const first = deliveries.find(
      (d) => d.record.messageId === failing.MessageId && d.record.attributes.ApproximateReceiveCount === "1",
    );
    expect(first).toBeDefined();
    // It stayed invisible for the queue's visibility timeout (2 s here) before coming back.
    expect(retried.at - (first?.at ?? 0)).toBeGreaterThanOrEqual(1500);
    await until(() => queueIsEmpty("TasksQueue").then((empty) => empty || undefined));
    expect(deliveries.filter((d) => d.record.messageId === ok.MessageId)).toHaveLength(1);
    expect(deliveries.filter((d) => d.record.messageId === failing.MessageId)).toHaveLength(2);
  });

  it("deletes nothing when the handler throws: the whole batch comes back", async () => {
    const crashing = await send("CompletionsQueue", "throw-once", "g-crash", "d-crash");
    const retried = await until(() =>
      deliveries.find(
        (d) =>
          d.record.messageId === crashing.MessageId && d.record.attributes.ApproximateReceiveCount === "2",
      ),
    );
    expect(retried.fn).toBe("advance");
    expect(logged.some((line) => line.startsWith("advance failed on a batch of 1"))).toBe(true);
    await until(() => queueIsEmpty("CompletionsQueue").then((empty) => empty || undefined));
    expect(deliveries.filter((d) => d.record.messageId === crashing.MessageId)).toHaveLength(2);
  });

  it("collapses duplicates with the same FIFO deduplication id", async () => {
    const first = await send("CompletionsQueue", "dup", "g-dup", "d-dup");
    const second = await send("CompletionsQueue", "dup", "g-dup", "d-dup");
    expect(second.MessageId).toBe(first.MessageId);
    await until(() => deliveries.find((d) => d.record.messageId === first.MessageId));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(deliveries.filter((d) => d.record.attributes.MessageDeduplicationId === "d-dup")).toHaveLength(1);
  });

  it("delivers a FIFO group in order, one message at a time", async () => {
    for (let i = 0; i < 5; i++) await send("TasksQueue", `ordered-${i}`, "g-order", `d-order-${i}`);
    await until(
      () =>
        deliveries.filter((d) => d.record.attributes.MessageGroupId === "g-order").length === 5 || undefined,
    );
    const bodies = deliveries
      .filter((d) => d.record.attributes.MessageGroupId === "g-order")
      .map((d) => d.record.body);
    expect(bodies).toEqual(["ordered-0", "ordered-1", "ordered-2", "ordered-3", "ordered-4"]);
  });
});

describe("schedules", () => {
  it("calls the sweeper with EventBridge scheduled events", async () => {
    await until(() => scheduled.length >= 2 || undefined);
    expect(scheduled[0]).toMatchObject({
      version: "0",
      "detail-type": "Scheduled Event",
      source: "aws.events",
      account: "000000000000",
      region: "us-east-1",
      detail: {},
    });
    expect(scheduled[0]?.resources[0]).toMatch(
      new RegExp(
        `^arn:aws:events:us-east-1:000000000000:rule/onceflow-${fixture.stack.stage}-SweeperEventsRuleSchedule1$`,
      ),
    );
    expect(scheduled[0]?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
});

describe("stop()", () => {
  it("stops the HTTP API, the emulators it started and leaves no java process", async () => {
    const noop = async () => ({ batchItemFailures: [] });
    const stack = await startLocalStack({
      port: 0,
      stage: uniqueStage(),
      log: silentLog,
      handlers: {
        api: async () => ({ statusCode: 200 }),
        worker: noop,
        advance: noop,
        sweeper: async () => {},
      },
    });
    const restore = fixture.stack.endpoints;
    try {
      expect(stack.started).toEqual({ dynamodb: true, sqs: true });
      expect((await callApi(stack.apiUrl, "GET", "/health")).status).toBe(200);
      const ports = [stack.apiUrl, stack.endpoints.dynamodb, stack.endpoints.sqs].map((url) =>
        Number(new URL(url).port),
      );
      expect(await Promise.all(ports.map(isListening))).toEqual([true, true, true]);
      expect(javaProcessesOnPort(ports[1] as number)).toBe(1);
      await stack.stop();
      expect(await Promise.all(ports.map(isListening))).toEqual([false, false, false]);
      expect(javaProcessesOnPort(ports[1] as number)).toBe(0);
    } finally {
      await stack.stop();
      // The second stack pointed this process's env at its own emulators; point it back.
      process.env.AWS_ENDPOINT_URL_DYNAMODB = restore.dynamodb;
      process.env.AWS_ENDPOINT_URL_SQS = restore.sqs;
    }
  });
});

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function javaProcessesOnPort(port: number): number {
  const lines = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n");
  return lines.filter((line) => line.includes("DynamoDBLocal.jar") && line.includes(`-port ${port} `)).length;
}
