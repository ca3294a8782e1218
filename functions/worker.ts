import { randomUUID } from "node:crypto";
import { Logger } from "@aws-lambda-powertools/logger";
import type { SQSRecord } from "aws-lambda";
import "../lib/actions/core";
import "../actions";
import { config } from "../lib/config";
import { work } from "../lib/engine/work";
import type { TaskMessage } from "../lib/queue";
import { fifoBatchHandler } from "./fifo-batch";
import { hide } from "./visibility";

/** Identifies this Lambda instance in leases and events. */
const workerId = randomUUID();
/** Thrown to leave a record on the queue: it comes back when its visibility timeout ends. */
class NotYet extends Error {}

async function handleRecord(record: SQSRecord): Promise<void> {
  const message = JSON.parse(record.body) as TaskMessage;
  // while the action runs, the message stays invisible as long as the lease (no second worker meanwhile)
  const keepHidden = (seconds: number) => hide(config.tasksQueueUrl(), record, seconds);
  const outcome = await work(message, workerId, keepHidden);
  if (outcome.done) return;
  // the message itself waits, invisible, for the retry time
  await hide(config.tasksQueueUrl(), record, outcome.retryAfterSeconds);
  throw new NotYet(
    `${message.runId}/${message.task}: not claimable for ${outcome.retryAfterSeconds.toFixed(1)} s`,
  );
}

/** tasks.fifo → claim, run, record, publish the completion (advance the run, for a plain task). Failed records (and later ones of their group) are retried by SQS. */
export const handler = fifoBatchHandler({
  logger: new Logger({ serviceName: "onceflow-worker" }),
  queueUrl: config.tasksQueueUrl,
  failure: "task message failed; SQS will deliver it again shortly",
  // keys only: an item's message also carries its record, input included (queue.ts)
  describe: (record) => {
    const { queued: _record, ...taskMessage } = JSON.parse(record.body) as TaskMessage;
    return { taskMessage };
  },
  forBatch: () => handleRecord,
  expected: (error) => error instanceof NotYet,
});
