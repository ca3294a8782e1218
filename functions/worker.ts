import { randomUUID } from "node:crypto";
import { processPartialResponse, SqsFifoPartialProcessorAsync } from "@aws-lambda-powertools/batch";
import { Logger } from "@aws-lambda-powertools/logger";
import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import "../lib/actions/core";
import "../actions";
import { config } from "../lib/config";
import { work } from "../lib/engine/work";
import type { TaskMessage } from "../lib/queue";
import { hide, retrySoon } from "./visibility";

/** Identifies this Lambda instance in leases and events. */
const workerId = randomUUID();
/** Thrown to leave a record on the queue: it comes back when its visibility timeout ends. */
class NotYet extends Error {}

const logger = new Logger({ serviceName: "onceflow-worker" });

async function handleRecord(record: SQSRecord, batch: SQSRecord[]): Promise<void> {
  const message = JSON.parse(record.body) as TaskMessage;
  // while the action runs, the message stays invisible as long as the lease (no second worker meanwhile)
  const keepHidden = (seconds: number) => hide(config.tasksQueueUrl(), record, seconds);
  const outcome = await work(message, workerId, keepHidden).catch(async (error: unknown) => {
    logger.error("task message failed; SQS will deliver it again shortly", {
      taskMessage: message,
      error: error as Error,
    });
    await retrySoon(config.tasksQueueUrl(), record, batch);
    throw error;
  });
  if (outcome.done) return;
  // the message itself waits, invisible, for the retry time
  await hide(config.tasksQueueUrl(), record, outcome.retryAfterSeconds);
  throw new NotYet(
    `${message.runId}/${message.task}: not claimable for ${outcome.retryAfterSeconds.toFixed(1)} s`,
  );
}

/** tasks.fifo → claim, run, record, publish the completion (advance the run, for a plain task). Failed records (and later ones of their group) are retried by SQS. */
export const handler = middy(
  (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
    // one processor per invocation: it holds the batch's state, and the local stack runs invocations side by side
    processPartialResponse(
      event,
      (record: SQSRecord) => handleRecord(record, event.Records),
      new SqsFifoPartialProcessorAsync(),
      {
        context,
        skipGroupOnError: true,
        throwOnFullBatchFailure: false,
      },
    ),
);
