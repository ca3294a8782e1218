/**
 * When an SQS record comes back to its handler. A FIFO queue has no per-message delay, so a record
 * waits by staying invisible: for a retry's delay, for a lease, or after its handler failed.
 */
import { ChangeMessageVisibilityCommand } from "@aws-sdk/client-sqs";
import type { SQSRecord } from "aws-lambda";
import { sqs } from "../lib/clients";

/** SQS's ceiling for a message's visibility timeout. */
const MAX_VISIBILITY_SECONDS = 12 * 3600;
/**
 * The longest a failed record stays away: its 1st, 2nd, 3rd... failures wait 1, 2, 4... up to
 * this. Short, for what fails here is mostly a race lost too often or a throttled call; a failure
 * that persists reaches the queue's dead-letter queue after its maxReceiveCount (where the sweeper's
 * re-sends still recover the execution).
 */
const MAX_FAILURE_SECONDS = 10;

/** Keeps `record` invisible for `seconds` from now. */
export async function hide(queueUrl: string, record: SQSRecord, seconds: number): Promise<void> {
  await sqs().send(
    new ChangeMessageVisibilityCommand({
      QueueUrl: queueUrl,
      ReceiptHandle: record.receiptHandle,
      VisibilityTimeout: Math.min(MAX_VISIBILITY_SECONDS, Math.ceil(seconds)),
    }),
  );
}

/**
 * After `failed`'s handler failed unexpectedly (a write that kept losing races, a throttled table):
 * it comes back in 1, 2, 4, 8, then 10 seconds, by how often it was received, instead of after
 * the queue's visibility timeout (15 minutes for task messages). So do the records after it in `batch`
 * of its message group, which the batch processor skips unprocessed: while one of them is in
 * flight, FIFO holds back the whole group. Best effort: where this fails, the queue's timeout applies.
 */
export async function retrySoon(queueUrl: string, failed: SQSRecord, batch: SQSRecord[]): Promise<void> {
  const received = Number(failed.attributes.ApproximateReceiveCount) || 1;
  const seconds = Math.min(MAX_FAILURE_SECONDS, 2 ** (received - 1));
  const group = failed.attributes.MessageGroupId;
  const skipped = batch.slice(batch.indexOf(failed) + 1).filter((r) => r.attributes.MessageGroupId === group);
  await Promise.all([failed, ...skipped].map((r) => hide(queueUrl, r, seconds).catch(() => undefined)));
}
