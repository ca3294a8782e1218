import type { APIGatewayProxyEventV2, Context, SQSEvent } from "aws-lambda";

/** A minimal API Gateway HTTP API (payload v2) event, for unit tests of the api handler. */
export function httpEvent(
  method: string,
  path: string,
  options: {
    body?: string;
    headers?: Record<string, string>;
    routeKey?: string;
    pathParameters?: Record<string, string>;
  } = {},
): APIGatewayProxyEventV2 {
  return {
    version: "2.0",
    routeKey: options.routeKey ?? "$default",
    rawPath: path,
    rawQueryString: "",
    headers: options.headers ?? {},
    pathParameters: options.pathParameters,
    body: options.body,
    isBase64Encoded: false,
    requestContext: {
      accountId: "000000000000",
      apiId: "local",
      domainName: "localhost",
      domainPrefix: "localhost",
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "test" },
      requestId: "req",
      routeKey: options.routeKey ?? "$default",
      stage: "$default",
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
  };
}

export function sqsEvent(
  bodies: unknown[],
  queueArn = "arn:aws:sqs:us-east-1:000000000000:q.fifo",
): SQSEvent {
  return {
    Records: bodies.map((body, i) => ({
      messageId: `m${i}`,
      receiptHandle: `rh${i}`,
      body: JSON.stringify(body),
      attributes: {
        ApproximateReceiveCount: "1",
        SentTimestamp: String(Date.now()),
        SenderId: "test",
        ApproximateFirstReceiveTimestamp: String(Date.now()),
        MessageGroupId: `g${i}`,
        MessageDeduplicationId: `d${i}`,
        SequenceNumber: String(i),
      },
      messageAttributes: {},
      md5OfBody: "",
      eventSource: "aws:sqs",
      eventSourceARN: queueArn,
      awsRegion: "us-east-1",
    })),
  };
}

export const lambdaContext = {
  functionName: "test",
  awsRequestId: "req",
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;
