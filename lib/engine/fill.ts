/**
 * Fills: the items of a with-items task queued into its free slots, a batch at a time, each batch
 * one transaction of the parent's counters (conditional on its version) and the run's check, its
 * messages sent once it committed (fanout.ts has the item's timeline). The countdown (countdown.ts)
 * refills with the same pieces.
 */
import { config } from "../config";
import { sendTasks, type TaskMessage } from "../queue";
import { lostRace, retryOnContention } from "../store/contention";
import { historyEvent, sortId } from "../store/events";
import { keys } from "../store/keys";
import { readItem } from "../store/run-state";
import { refusedAt, type TxItem, transact, type Write } from "../store/transaction";
import { whileRunning } from "./dispatch";
import { queuedItems } from "./items";
import { type FanOutRecord, nextLook } from "./task-record";

/** The guard of every change of a with-items task's counters: its version as read (I4). */
export const VERSION_FENCE = "version = :version";
/** The guard of queueing an item put `pending` (a task started before chunks): still pending. */
export const FROM_PENDING = "#status = :pending";

/**
 * Items queued in one transaction (a fresh item is no write of it, a redriven one or one put
 * `pending` before chunks is one, under DynamoDB's 100)...
 */
const SLOTS_PER_TRANSACTION = 40;
/**
 * ...and fewer of large items: a chunk holds at most 300 KB of inputs, and ten chunks' worth
 * bounds what one fill holds and sends (each message carries its item's input).
 */
export const slotsPerTransaction = (p: FanOutRecord) =>
  p.chunk ? Math.min(SLOTS_PER_TRANSACTION, 10 * p.chunk) : SLOTS_PER_TRANSACTION;
/**
 * Transactions of items one fill queues at most (800 items); the rest is queued by the next
 * advance. (Before the retry helper, the fill's 20 tries bounded its batches and its lost races
 * together.)
 */
const FILL_BATCHES = 20;

export const readParent = (runId: string, task: string) => readItem<FanOutRecord>(keys.task(runId, task));

export const failing = (p: Pick<FanOutRecord, "failedItems" | "maxFailures">) =>
  p.failedItems > p.maxFailures;

/** Items not queued yet: those a redrive put back, and those never started. */
export const unqueued = (p: FanOutRecord) => (p.redo?.length ?? 0) + p.total - p.nextIndex;

/** How many items may be queued now. */
export function freeSlots(p: FanOutRecord): number {
  if (p.status !== "running" || failing(p)) return 0;
  return Math.max(0, Math.min(p.concurrency - p.active, unqueued(p)));
}

/** Items to queue: first those a redrive put back (`redo`), then fresh ones from `nextIndex`. */
export interface Batch {
  redo: number[];
  fresh: number[];
  /** The sort ids of the fresh items' TaskQueued, made as the fill takes them (store/events.ts). */
  queuedAs: string[];
}

/** The next `count` items to queue, and the parent's counters (and `filledAt`) once they are. */
export function takeItems(p: FanOutRecord, count: number): { batch: Batch; after: FanOutRecord } {
  const redo = (p.redo ?? []).slice(0, count);
  const fresh = Array.from({ length: count - redo.length }, (_, k) => p.nextIndex + k);
  const queuedAs = fresh.map(() => sortId());
  const last = queuedAs[queuedAs.length - 1];
  const after: FanOutRecord = {
    ...p,
    redo: (p.redo ?? []).slice(redo.length),
    nextIndex: p.nextIndex + fresh.length,
    active: p.active + count,
    // the last fill's queueing: no fresh item below nextIndex was queued later (items.ts queuedBy)
    ...(last ? { filledAt: last } : {}),
  };
  return { batch: { redo, fresh, queuedAs }, after };
}

/** What queues a batch: its writes, and the messages to send once they are committed. */
export interface Queueing {
  writes: Write[];
  fresh: TaskMessage[];
  redo: TaskMessage[];
}

/**
 * What queues a batch: a fresh item nothing (its message carries its record, from its chunk:
 * items.ts), a redriven one failed|cancelled -> queued. A record gets the time of its next look
 * (`sweepAt`) but no `sweepShard`: it is looked at through its task's look (look.ts), not through
 * the sweeper's index.
 */
export async function queueItems(p: FanOutRecord, batch: Batch, now: Date): Promise<Queueing> {
  const writes: Write[] = [];
  const message = (item: number): TaskMessage => ({ runId: p.runId, task: p.task, item });
  const sweep = { ":sweepAt": nextLook(now) };
  for (const index of batch.redo) {
    writes.push(
      {
        Update: {
          TableName: config.tableName(),
          Key: keys.item(p.runId, p.task, index),
          UpdateExpression:
            "SET #status = :queued, attemptBase = attempt, redriven = :redriven, sweepAt = :sweepAt " +
            "REMOVE #error, #output, endedAt",
          // closes: an item put back by a redrive being queued twice by two fills that read the same counters
          ConditionExpression: "#status IN (:failed, :cancelled)",
          ExpressionAttributeNames: { "#status": "status", "#error": "error", "#output": "output" },
          ExpressionAttributeValues: {
            ":queued": "queued",
            ":failed": "failed",
            ":cancelled": "cancelled",
            ":redriven": p.redriveCount ?? 0,
            ...sweep,
          },
        },
      },
      historyEvent(p.runId, "TaskQueued", { task: p.task, item: index }),
    );
  }
  if (p.chunk) {
    const queuedAs = new Map(batch.fresh.map((item, k) => [item, batch.queuedAs[k] as string]));
    const queued = await queuedItems({ ...p, chunk: p.chunk }, queuedAs);
    return {
      writes,
      fresh: batch.fresh.map((item) => ({ ...message(item), queued: queued.get(item) })),
      redo: batch.redo.map(message),
    };
  }
  // a task started before items were chunked: its items were put `pending` when it started
  for (const [k, index] of batch.fresh.entries()) {
    writes.push(
      {
        Update: {
          TableName: config.tableName(),
          Key: keys.item(p.runId, p.task, index),
          UpdateExpression: "SET #status = :queued, sweepAt = :sweepAt",
          // closes: an item queued twice by two fills that read the same counters
          ConditionExpression: FROM_PENDING,
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: { ":queued": "queued", ":pending": "pending", ...sweep },
        },
      },
      historyEvent(p.runId, "TaskQueued", { task: p.task, item: index }, batch.queuedAs[k]),
    );
  }
  return { writes, fresh: batch.fresh.map(message), redo: batch.redo.map(message) };
}

/**
 * The parent's new counters (and, when it ends, its terminal status), conditional on its version.
 * A task that is no longer running and has every item it dispatched counted leaves the sweeper's
 * index: nothing of it is left to look at (look.ts).
 */
export function parentUpdate(before: FanOutRecord, after: FanOutRecord, now: Date): TxItem {
  // counters that no sequence of fills and countdowns can reach: refuse to write them (a bug), so
  // that it shows at once instead of as a task that waits forever for items that never come
  if (after.active < 0 || after.nextIndex > after.total)
    throw new Error(
      `${before.runId}/${before.task}: counters out of range (active ${after.active}, next ${after.nextIndex})`,
    );
  const ended = after.status !== before.status;
  const values: Record<string, unknown> = {
    ":version": before.version,
    ":next": after.version,
    ":nextIndex": after.nextIndex,
    ":active": after.active,
    ":succeeded": after.succeededItems,
    ":failed": after.failedItems,
    ":cancelled": after.cancelledItems ?? 0,
    ":redo": after.redo ?? [],
    ":below": after.countedBelow ?? 0,
    ":above": after.countedAbove ?? [],
    ":putBack": after.putBack ?? {},
  };
  let update =
    "SET version = :next, nextIndex = :nextIndex, active = :active, succeededItems = :succeeded, " +
    "failedItems = :failed, cancelledItems = :cancelled, redo = :redo, countedBelow = :below, " +
    "countedAbove = :above, putBack = :putBack";
  if (ended) {
    update += ", #status = :status, endedAt = :now";
    Object.assign(values, { ":status": after.status, ":now": now.toISOString() });
    if (after.error) {
      update += ", #error = :error";
      values[":error"] = after.error;
    }
  }
  if (after.filledAt !== before.filledAt) {
    update += ", filledAt = :filledAt";
    values[":filledAt"] = after.filledAt;
  }
  if (after.status !== "running" && after.active === 0) update += " REMOVE sweepShard, sweepAt";
  return {
    Update: {
      TableName: config.tableName(),
      Key: keys.task(before.runId, before.task),
      UpdateExpression: update,
      // closes: two handlers changing the counters from the same reading (lost update, double count)
      ConditionExpression: VERSION_FENCE,
      ExpressionAttributeNames: ended
        ? { "#status": "status", ...(after.error ? { "#error": "error" } : {}) }
        : undefined,
      ExpressionAttributeValues: values,
    },
  };
}

export async function sendItems(p: FanOutRecord, queued: Queueing): Promise<void> {
  await sendTasks(queued.fresh);
  // a redriven item had its messages sent before: a new dedup generation, or SQS would drop them
  await sendTasks(queued.redo, `redrive/${p.redriveCount ?? 0}`);
}

/**
 * Queues pending items into the free slots of a running with-items task. Level-triggered: it runs
 * after every advance, so a fill that died half-way (or a slot freed without a refill) is repaired.
 */
export async function fill(
  runId: string,
  task: string,
  known?: FanOutRecord,
  now = new Date(),
): Promise<void> {
  let parent = known;
  for (let batch = 0; batch < FILL_BATCHES; batch++) {
    // contention on every try: stop quietly, like a fill that found nothing to do, so no
    // ContentionError. Level-triggered: the handler that moved the counters refills the slots it
    // freed, and the next advance repairs whatever is left
    const filled = await retryOnContention(
      `fill ${runId}/${task}`,
      async () => {
        const current = parent ?? (await readParent(runId, task));
        if (!current) return undefined;
        const count = Math.min(freeSlots(current), slotsPerTransaction(current));
        if (count === 0) return undefined;
        const taken = takeItems(current, count);
        const after = { ...taken.after, version: current.version + 1 };
        const queued = await queueItems(current, taken.batch, now);
        const outcome = await transact([
          whileRunning(runId),
          parentUpdate(current, after, now),
          ...queued.writes,
        ]);
        if (!outcome.ok) {
          if (refusedAt(outcome, keys.run(runId))) return undefined; // the run is no longer running
          parent = undefined; // another handler moved the counters: read them again
          return lostRace(outcome.reasons);
        }
        await sendItems(current, queued);
        return after;
      },
      { giveUp: () => undefined },
    );
    if (!filled) return;
    parent = filled;
  }
}
