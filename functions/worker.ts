import { randomUUID } from "node:crypto";
import { Logger } from "@aws-lambda-powertools/logger";
import type { Context, SQSRecord } from "aws-lambda";
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

/**
 * Time kept back when this worker runs a successor itself (lib/engine/work.ts): the successor's
 * timeout plus this must fit in what is left of the invocation, as 120 s (the longest task
 * timeout) plus this is the function's timeout of 150 s.
 */
const RESERVE_MS = 30_000;

async function handleRecord(record: SQSRecord, context: Context, last: boolean): Promise<void> {
  const message = JSON.parse(record.body) as TaskMessage;
  // while the action runs, the message stays invisible as long as the lease (no second worker
  // meanwhile); so does it while this worker runs a successor of its task
  const keepHidden = (seconds: number) => hide(config.tasksQueueUrl(), record, seconds);
  const outcome = await work(message, workerId, {
    onRenew: keepHidden,
    // the batch's last record only: the records after it would wait for the successors
    roomFor: (timeoutSeconds) =>
      last && context.getRemainingTimeInMillis() >= timeoutSeconds * 1000 + RESERVE_MS,
  });
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
  forBatch: (event, context) => (record) => handleRecord(record, context, record === event.Records.at(-1)),
  expected: (error) => error instanceof NotYet,
});
