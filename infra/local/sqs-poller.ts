/**
 * The local Lambda event source mapping for SQS: concurrent long-poll loops that receive batches,
 * hand the function a real `SQSEvent`, and delete what succeeded. With
 * `ReportBatchItemFailures` only the records not listed in `batchItemFailures` are deleted; when
 * the handler throws (or times out) nothing is deleted, so every record comes back after its
 * visibility timeout, as on AWS. FIFO ordering is the queue's job: it does not hand out a message
 * group while a message of that group is in flight.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type {
  SQSBatchResponse,
  SQSEvent,
  SQSMessageAttributes,
  SQSRecord,
  SQSRecordAttributes,
} from "aws-lambda";
import { invokeLambda, type LambdaFunctionInfo, type LambdaHandler } from "./lambda-context";
import { type LocalLog, silentLog } from "./log";

export interface SqsPollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  region: string;
  fn: LambdaFunctionInfo;
  handler: LambdaHandler<SQSEvent, unknown>;
  /** Records per batch (SQS hands out at most 10 per receive). */
  batchSize: number;
  reportBatchItemFailures: boolean;
  /** Concurrent poll loops, i.e. concurrent handler invocations. Default 4. */
  concurrency?: number;
  /** Long-poll wait per receive. Default 1 second. */
  waitTimeSeconds?: number;
  log?: LocalLog;
}

export interface SqsPoller {
  /** Batches handed to the handler so far. */
  readonly batches: number;
  /** Stops receiving, lets the batches in flight finish (and be deleted), then resolves. */
  stop(): Promise<void>;
}

export function startSqsPoller(options: SqsPollerOptions): SqsPoller {
  const log = options.log ?? silentLog;
  const concurrency = options.concurrency ?? 4;
  const maxMessages = Math.max(1, Math.min(options.batchSize, 10));
  let running = true;
  let batches = 0;
  const stopped = new AbortController();
  const pause = (ms: number) => sleep(ms, undefined, { signal: stopped.signal }).catch(() => {});

  async function loop(index: number): Promise<void> {
    while (running) {
      let messages: Message[];
      try {
        const received = await options.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: options.queueUrl,
            MaxNumberOfMessages: maxMessages,
            WaitTimeSeconds: options.waitTimeSeconds ?? 1,
            MessageSystemAttributeNames: ["All"],
            MessageAttributeNames: ["All"],
          }),
        );
        messages = received.Messages ?? [];
      } catch (error) {
        if (!running) return;
        log.error(`${options.fn.name} poller ${index}: receive failed`, error);
        await pause(1000);
        continue;
      }
      if (messages.length === 0) continue;
      batches++;
      // Even when stopping: these messages are in flight now, so handle them.
      await deliver(messages);
    }
  }

  async function deliver(messages: Message[]): Promise<void> {
    const event: SQSEvent = { Records: messages.map((message) => toRecord(message, options)) };
    let result: unknown;
    try {
      result = await invokeLambda(options.handler, event, options.fn);
    } catch (error) {
      const what = `${options.fn.name} failed on a batch of ${messages.length}; the batch will be retried after its visibility timeout`;
      // an injected crash (chaos.ts) is expected: one line, not a stack trace per batch
      if ((error as Error | undefined)?.name === "ChaosCrash")
        log.warn(`${what} (${(error as Error).message})`);
      else log.error(what, error);
      return;
    }
    const failed = options.reportBatchItemFailures ? failedIds(result, event) : new Set<string>();
    if (failed === "all") {
      log.error(`${options.fn.name} returned an invalid batchItemFailures; the whole batch will be retried`);
      return;
    }
    const done = messages.filter((message) => !failed.has(message.MessageId as string));
    if (failed.size > 0) log.debug(`${options.fn.name}: ${failed.size} of ${messages.length} records failed`);
    await deleteMessages(done);
  }

  async function deleteMessages(messages: Message[]): Promise<void> {
    for (let start = 0; start < messages.length; start += 10) {
      const chunk = messages.slice(start, start + 10);
      try {
        const response = await options.sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: options.queueUrl,
            Entries: chunk.map((message, index) => ({
              Id: String(index),
              ReceiptHandle: message.ReceiptHandle,
            })),
          }),
        );
        for (const failure of response.Failed ?? []) {
          log.warn(
            `${options.fn.name}: could not delete a message: ${failure.Code} ${failure.Message ?? ""}`,
          );
        }
      } catch (error) {
        log.error(
          `${options.fn.name}: DeleteMessageBatch failed; those messages will be delivered again`,
          error,
        );
      }
    }
  }

  const loops = Array.from({ length: concurrency }, (_, index) => loop(index));
  log.info(
    `${options.fn.name} polls ${options.queueArn} (batch ${options.batchSize}, ${concurrency} concurrent)`,
  );

  let stopping: Promise<void> | undefined;
  return {
    get batches() {
      return batches;
    },
    stop() {
      stopping ??= (async () => {
        running = false;
        stopped.abort();
        await Promise.all(loops);
      })();
      return stopping;
    },
  };
}

/**
 * The ids to keep from `batchItemFailures`, or "all" when the response is invalid (an empty,
 * missing or unknown `itemIdentifier`), which Lambda treats as a failure of the whole batch.
 */
function failedIds(result: unknown, event: SQSEvent): Set<string> | "all" {
  if (result === undefined || result === null) return new Set();
  if (typeof result !== "object") return new Set();
  const failures = (result as Partial<SQSBatchResponse>).batchItemFailures;
  if (failures === undefined || failures === null) return new Set();
  if (!Array.isArray(failures)) return "all";
  const ids = new Set(event.Records.map((record) => record.messageId));
  const failed = new Set<string>();
  for (const failure of failures) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== "string" || !ids.has(id)) return "all";
    failed.add(id);
  }
  return failed;
}

function toRecord(message: Message, options: SqsPollerOptions): SQSRecord {
  const system = message.Attributes ?? {};
  const attributes: SQSRecordAttributes = {
    ApproximateReceiveCount: system.ApproximateReceiveCount ?? "1",
    SentTimestamp: system.SentTimestamp ?? String(Date.now()),
    SenderId: system.SenderId ?? "",
    ApproximateFirstReceiveTimestamp: system.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
  };
  for (const name of [
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
  ] as const) {
    const value = system[name];
    if (value !== undefined) attributes[name] = value;
  }
  return {
    messageId: message.MessageId as string,
    receiptHandle: message.ReceiptHandle as string,
    body: message.Body ?? "",
    attributes,
    messageAttributes: toMessageAttributes(message.MessageAttributes),
    md5OfBody: message.MD5OfBody ?? "",
    ...(message.MD5OfMessageAttributes ? { md5OfMessageAttributes: message.MD5OfMessageAttributes } : {}),
    eventSource: "aws:sqs",
    eventSourceARN: options.queueArn,
    awsRegion: options.region,
  };
}

function toMessageAttributes(
  attributes: Record<string, MessageAttributeValue> | undefined,
): SQSMessageAttributes {
  const out: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(attributes ?? {})) {
    out[name] = {
      dataType: value.DataType ?? "String",
      ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
      ...(value.BinaryValue !== undefined
        ? { binaryValue: Buffer.from(value.BinaryValue).toString("base64") }
        : {}),
      stringListValues: value.StringListValues ?? [],
      binaryListValues: (value.BinaryListValues ?? []).map((item) => Buffer.from(item).toString("base64")),
    };
  }
  return out;
}
