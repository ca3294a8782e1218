import { SendMessageBatchCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { sqs } from "./clients";
import { config } from "./config";
import { sha256 } from "./definition/hash";
import type { TaskRecord } from "./engine/task-record";

/**
 * A task message carries keys (everything else is read from DynamoDB), except the message of an
 * execution queued without its record (an item a fill queued, engine/items.ts; a start task,
 * engine/start.ts): it carries that record (`queued`), and the worker's first claim puts it.
 */
export interface TaskMessage {
  runId: string;
  task: string;
  /** The with-items index; absent for a plain task. */
  item?: number;
  /**
   * The attempt the execution is at as the sender knows it (absent: 0, a new execution). The worker
   * claims on it without reading first; if it is out of date the claim's condition fails and the
   * worker judges from the execution as it is (claim.ts). Never part of the dedup id.
   */
  attempt?: number;
  /** An execution queued and not written yet: its record, and its queueing. */
  queued?: QueuedItem;
}

/** The record of an execution queued without it: its first claim puts it (claim.ts). */
export interface QueuedItem {
  execution: Omit<TaskRecord, "status" | "attempt" | "createdAt" | "sweepAt" | "sweepShard">;
  /**
   * The sort id (store/events.ts) of its `TaskQueued`, made when it was queued (by its fill, or
   * its run's start; a look that sends it again: at the latest then), so the event keeps its place
   * in the history.
   */
  queuedAs: string;
}

/**
 * A completion notice: the execution settled (its result is already recorded in DynamoDB, fenced
 * on `attempt`). `outcome` is that recorded outcome, so counting an item down needs no read.
 */
export interface CompletionMessage {
  runId: string;
  task: string;
  item?: number;
  attempt: number;
  outcome: "succeeded" | "failed" | "cancelled";
  /**
   * An item queued again by a redrive: that redrive. An item can settle twice at one attempt (put
   * back cancelled, then cancelled again before any claim); this tells the two completions apart.
   */
  redriven?: number;
}

/** The completion of an execution's attempt, as recorded (one shape for every publisher). */
export const completionOf = (
  record: { runId: string; task: string; item?: number; attempt: number; redriven?: number },
  outcome: CompletionMessage["outcome"],
): CompletionMessage => ({
  runId: record.runId,
  task: record.task,
  item: record.item,
  attempt: record.attempt,
  outcome,
  ...(record.redriven ? { redriven: record.redriven } : {}),
});

/**
 * Dedup ids derive from the same key as the conditional put that created the execution, so SQS
 * drops a second send of the same dispatch within its 5-minute window. `generation` distinguishes
 * a deliberate re-send (by the sweeper) from a duplicate.
 */
export function taskDedupId(message: TaskMessage, generation = ""): string {
  return sha256(`task/${message.runId}/${message.task}/${message.item ?? "-"}/${generation}`);
}

export function completionDedupId(message: CompletionMessage): string {
  const redriven = message.redriven ? `/${message.redriven}` : "";
  return sha256(
    `completion/${message.runId}/${message.task}/${message.item ?? "-"}/${message.attempt}${redriven}`,
  );
}

/**
 * Each execution is its own FIFO group: a task waiting to retry holds up no other task. A
 * deliberate re-send (`generation`) goes to a group of its own: a message whose handler died stays
 * in flight, holding back its group, until the queue's visibility timeout ends (15 minutes for
 * tasks), and a re-send in that group would wait behind it.
 */
const taskGroup = (message: TaskMessage, generation: string) => {
  const group = `${message.runId}/${message.task}/${message.item ?? "-"}`;
  return generation ? groupOfItsOwn(`${group}/${generation}`) : group;
};

/** A FIFO group that no other message shares (at most 128 characters, as SQS requires). */
const groupOfItsOwn = (key: string) => `own/${sha256(key)}`;

/** Sends task messages; `generation` (one for all, or each message's own) marks a deliberate re-send. */
export async function sendTasks(
  messages: TaskMessage[],
  generation: string | ((message: TaskMessage) => string) = "",
): Promise<void> {
  const of = typeof generation === "string" ? () => generation : generation;
  await sendBatches(config.tasksQueueUrl(), messages, (message) => ({
    MessageGroupId: taskGroup(message, of(message)),
    MessageDeduplicationId: taskDedupId(message, of(message)),
  }));
}

/**
 * The bytes one SendMessageBatch carries at most: SQS's 256 KiB for a batch (and for a message),
 * less room for the attributes. A message of an item carries its input (up to 100 KB).
 */
const MAX_BATCH_BYTES = 240 * 1024;

/** `bodies` in batches of at most 10 messages (SQS's maximum) and MAX_BATCH_BYTES. */
function batchesOf(bodies: string[]): number[][] {
  const batches: number[][] = [];
  let batch: number[] = [];
  let bytes = 0;
  bodies.forEach((body, index) => {
    const size = Buffer.byteLength(body);
    if (batch.length === 10 || (batch.length > 0 && bytes + size > MAX_BATCH_BYTES)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(index);
    bytes += size;
  });
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/** Sends `messages` in batches (`batchesOf`); throws when SQS refuses any. */
async function sendBatches<T>(
  queueUrl: string,
  messages: T[],
  ids: (message: T) => { MessageGroupId: string; MessageDeduplicationId: string },
): Promise<void> {
  const bodies = messages.map((message) => JSON.stringify(message));
  for (const batch of batchesOf(bodies)) {
    const result = await sqs().send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: batch.map((index) => ({
          Id: String(index),
          MessageBody: bodies[index],
          ...ids(messages[index] as T),
        })),
      }),
    );
    if (result.Failed?.length) {
      throw new Error(`SQS refused ${result.Failed.length} message(s): ${result.Failed[0]?.Message}`);
    }
  }
}

/** Completion groups a run's items are spread over. */
export const COMPLETION_GROUPS_PER_RUN = 10;

/**
 * A run's completions are spread over a few FIFO groups (items by index), so that one batch can
 * carry several completions of the same run, counted down in one transaction, while a run's
 * completions never flood `advance`. Correctness does not depend on the grouping: every
 * transition is conditional.
 */
const completionGroup = (message: CompletionMessage) =>
  message.item === undefined ? message.runId : `${message.runId}/${message.item % COMPLETION_GROUPS_PER_RUN}`;

/**
 * The sweeper's periodic look at a running run, or at one of its with-items tasks (`task`), handed
 * to `advance` through the completions queue: it times the run out, counts the settled items whose
 * completion was lost, and finishes what a crash left undone (advance is level-triggered).
 */
export interface LookMessage {
  look: true;
  runId: string;
  task?: string;
}

/** What `advance` receives on the completions queue. */
export type AdvanceMessage = CompletionMessage | LookMessage;

export const isLook = (message: AdvanceMessage): message is LookMessage => "look" in message;

/**
 * Sends the sweeper's looks. `generation` (the `sweepAt` the sweeper saw) is in the dedup id, so
 * racing sweepers, or one that died after sending, send each look once; each goes to a group of
 * its own, so that it never waits behind a completion whose advance died holding it.
 */
export async function sendLooks(looks: LookMessage[], generation: string): Promise<void> {
  await sendBatches(config.completionsQueueUrl(), looks, (look) => {
    const key = `look/${look.runId}/${look.task ?? "-"}/${generation}`;
    return { MessageGroupId: groupOfItsOwn(key), MessageDeduplicationId: sha256(key) };
  });
}

export async function sendCompletion(message: CompletionMessage): Promise<void> {
  await sqs().send(
    new SendMessageCommand({
      QueueUrl: config.completionsQueueUrl(),
      MessageBody: JSON.stringify(message),
      MessageGroupId: completionGroup(message),
      MessageDeduplicationId: completionDedupId(message),
    }),
  );
}
