import { randomUUID } from "node:crypto";
import { Logger } from "@aws-lambda-powertools/logger";
import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import "../lib/actions/core";
import "../actions";
import { config } from "../lib/config";
import { work } from "../lib/engine/work";
import { type CompletionMessage, completionSender, type TaskMessage } from "../lib/queue";
import { handleFifoBatch } from "./fifo-batch";
import { hide, retrySoon } from "./visibility";

/** Identifies this Lambda instance in leases and events. */
const workerId = randomUUID();
/** Thrown to leave a record on the queue: it comes back when its visibility timeout ends. */
class NotYet extends Error {}

const logger = new Logger({ serviceName: "onceflow-worker" });

async function handleRecord(
  record: SQSRecord,
  group: SQSRecord[],
  sendCompletion: (completion: CompletionMessage) => Promise<void>,
): Promise<void> {
  const message = JSON.parse(record.body) as TaskMessage;
  // while the action runs, the message stays invisible as long as the lease (no second worker meanwhile)
  const keepHidden = (seconds: number) => hide(config.tasksQueueUrl(), record, seconds);
  const outcome = await work(message, workerId, { onRenew: keepHidden, sendCompletion }).catch(
    async (error: unknown) => {
      logger.error("task message failed; SQS will deliver it again shortly", {
        taskMessage: message,
        error: error as Error,
      });
      await retrySoon(config.tasksQueueUrl(), record, group);
      throw error;
    },
  );
  if (outcome.done) return;
  // the message itself waits, invisible, for the retry time
  await hide(config.tasksQueueUrl(), record, outcome.retryAfterSeconds);
  throw new NotYet(
    `${message.runId}/${message.task}: not claimable for ${outcome.retryAfterSeconds.toFixed(1)} s`,
  );
}

/**
 * tasks.fifo → claim, run, record, publish the completion (advance the run, for a plain task).
 * The tasks of a batch run side by side (each execution is its own message group), and the items'
 * completions they publish share SendMessageBatch requests. Failed records (and later ones of
 * their group) are retried by SQS.
 */
export const handler = middy((event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  // one sender per invocation: it batches only what this invocation settles, as on AWS
  const sendCompletion = completionSender();
  return handleFifoBatch(event, context, (record, group) => handleRecord(record, group, sendCompletion));
});
