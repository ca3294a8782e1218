import { config } from "../config";
import type { TaskDefinition, WorkflowDefinition } from "../definition/types";
import { ExpressionError } from "../errors";
import { evaluateTemplate } from "../expression";
import { mapLimit } from "../map-limit";
import { type CompletionMessage, sendTasks, type TaskMessage } from "../queue";
import { type LostRace, lostRace, retryOnContention } from "../store/contention";
import { historyEvent, sortId } from "../store/events";
import { keys } from "../store/keys";
import { queryRunItems, readItem } from "../store/run-state";
import { type TxItem, transact, type Write } from "../store/transaction";
import { countable, withCounted } from "./counted";
import { planTasks, type TemplateContext, whileRunning } from "./dispatch";
import { point } from "./interleave";
import { chunkSize, queuedItems, writeChunks } from "./items";
import { type ErrorInfo, type FanOutRecord, nextLook, sweepShard, type TaskRecord } from "./task-record";

/** The most items one with-items task may have. */
export const MAX_ITEMS = 50_000;
/**
 * Items queued in one transaction (a fresh item is no write of it, a redriven one or one put
 * `pending` before chunks is one, under DynamoDB's 100)...
 */
const SLOTS_PER_TRANSACTION = 40;
/**
 * ...and fewer of large items: a chunk holds at most 300 KB of inputs, and ten chunks' worth
 * bounds what one fill holds and sends (each message carries its item's input).
 */
const slotsPerTransaction = (p: FanOutRecord) =>
  p.chunk ? Math.min(SLOTS_PER_TRANSACTION, 10 * p.chunk) : SLOTS_PER_TRANSACTION;
/** Items evaluated at once when a task starts. */
const EVALUATE_CONCURRENCY = 16;
/**
 * Transactions of items one fill queues at most (800 items); the rest is queued by the next
 * advance. (Before the retry helper, the fill's 20 tries bounded its batches and its lost races
 * together.)
 */
const FILL_BATCHES = 20;
/**
 * Tries of a countdown, twice the default: every countdown and fill of a with-items task writes its
 * parent (several advances at once: a run's completions are spread over a few FIFO groups), so the
 * parent is a hot item; and a countdown that gives up returns its whole batch of completions to
 * the queue (their visibility timeout) instead of counting them. About 14 s of backoff at most.
 */
const COUNTDOWN_TRIES = 20;

/*
 * A with-items task, timeline of one item (every arrow is one conditional write):
 *
 *   startFanOut   the items' inputs put in chunks (items.ts)      ... before the parent
 *   startFanOut   parent put `running`, counters 0, `chunk` (attribute_not_exists, run running)
 *   fill          parent nextIndex/active += 1 and filledAt (parent version, run running);
 *                 the item's message carries its record from its chunk (items.ts), nothing of it is
 *                 written
 *   worker        item put running as attempt 1, from its message (attribute_not_exists: the
 *                 first claim of the message), with TaskQueued and TaskStarted -> succeeded |
 *                 failed (fenced on attempt)
 *   advance       parent: the item in its counted set (counted.ts), active -= 1, succeeded|failed += 1,
 *                 refill the slot, and when nothing is active and nothing is left, parent ->
 *                 succeeded | failed: one update of the parent a batch of completions (with the
 *                 items it refills and the run's check, a transaction), conditional on the parent's
 *                 version, so a redelivered completion can never count an item twice (F1).
 *
 * Siblings remaining is `active` plus `total - nextIndex`, read from the parent's counters, never
 * from item statuses.
 */

/** Starts a with-items task. Re-entrant: what already exists is kept, what is missing is written. */
export async function startFanOut(
  runId: string,
  definition: WorkflowDefinition,
  task: string,
  context: TemplateContext,
  now = new Date(),
): Promise<void> {
  const spec = definition.tasks[task] as TaskDefinition;
  const { items, error } = await evaluateItems(spec, task, context);
  const records = items ? await planItems(runId, definition, task, items, context, now) : [];
  const chunk = chunkSize(records);
  await writeChunks(records, chunk);
  const total = items?.length ?? 0;
  const status = error ? "failed" : total === 0 ? "succeeded" : "running";
  const parent: FanOutRecord = {
    runId,
    task,
    status,
    fanOut: true,
    total,
    nextIndex: 0,
    active: 0,
    succeededItems: 0,
    failedItems: 0,
    concurrency: Math.max(1, spec.concurrency ?? total),
    maxFailures: Math.floor((total * (spec.toleratedFailurePercentage ?? 0)) / 100),
    countedBelow: 0,
    countedAbove: [],
    version: 0,
    chunk,
    error,
    createdAt: now.toISOString(),
    startedAt: now.toISOString(),
    ...(status === "running"
      ? { sweepShard: sweepShard(runId), sweepAt: nextLook(now) }
      : { endedAt: now.toISOString() }),
  };
  const type = status === "running" ? "TaskStarted" : status === "succeeded" ? "TaskSucceeded" : "TaskFailed";
  await transact([
    whileRunning(runId),
    {
      Put: {
        TableName: config.tableName(),
        Item: { ...keys.task(runId, task), ...parent },
        // closes: two advances starting the same with-items task (I3)
        ConditionExpression: "attribute_not_exists(pk)",
      },
    },
    historyEvent(runId, type, { task, detail: error ? { error } : { items: total } }),
  ]);
  if (status === "running") await fill(runId, task);
}

async function evaluateItems(
  spec: TaskDefinition,
  task: string,
  context: TemplateContext,
): Promise<{ items?: unknown[]; error?: ErrorInfo }> {
  let value: unknown;
  try {
    value = await evaluateTemplate(spec.withItems, { ...context }, `tasks.${task}.withItems`);
  } catch (error) {
    if (!(error instanceof ExpressionError)) throw error;
    return { error: { code: error.code, message: error.message } };
  }
  if (!Array.isArray(value)) {
    return {
      error: {
        code: "InvalidItems",
        message: `withItems gave ${value === null ? "null" : typeof value}, not an array`,
      },
    };
  }
  if (value.length > MAX_ITEMS) {
    return {
      error: { code: "TooManyItems", message: `withItems gave ${value.length} items, over ${MAX_ITEMS}` },
    };
  }
  return { items: value };
}

/** Every item's execution, its input evaluated with `item` and `index`. */
function planItems(
  runId: string,
  definition: WorkflowDefinition,
  task: string,
  items: unknown[],
  context: TemplateContext,
  now: Date,
): Promise<TaskRecord[]> {
  return mapLimit(
    items.map((item, index) => ({ item, index })),
    EVALUATE_CONCURRENCY,
    async ({ item, index }) => {
      const [record] = await planTasks(runId, definition, [task], { ...context, item, index }, now);
      return { ...(record as TaskRecord), item: index };
    },
  );
}

const readParent = (runId: string, task: string) => readItem<FanOutRecord>(keys.task(runId, task));

const failing = (p: Pick<FanOutRecord, "failedItems" | "maxFailures">) => p.failedItems > p.maxFailures;

/** Items not queued yet: those a redrive put back, and those never started. */
export const unqueued = (p: FanOutRecord) => (p.redo?.length ?? 0) + p.total - p.nextIndex;

/** How many items may be queued now. */
function freeSlots(p: FanOutRecord): number {
  if (p.status !== "running" || failing(p)) return 0;
  return Math.max(0, Math.min(p.concurrency - p.active, unqueued(p)));
}

/** Items to queue: first those a redrive put back (`redo`), then fresh ones from `nextIndex`. */
interface Batch {
  redo: number[];
  fresh: number[];
  /** The sort ids of the fresh items' TaskQueued, made as the fill takes them (store/events.ts). */
  queuedAs: string[];
}

/** The next `count` items to queue, and the parent's counters (and `filledAt`) once they are. */
function takeItems(p: FanOutRecord, count: number): { batch: Batch; after: FanOutRecord } {
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
interface Queueing {
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
async function queueItems(p: FanOutRecord, batch: Batch, now: Date): Promise<Queueing> {
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
    const queued = await queuedItems(
      { ...p, chunk: p.chunk },
      batch.fresh,
      (item) => queuedAs.get(item) as string,
    );
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
          ConditionExpression: "#status = :pending",
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
      ConditionExpression: "version = :version",
      ExpressionAttributeNames: ended
        ? { "#status": "status", ...(after.error ? { "#error": "error" } : {}) }
        : undefined,
      ExpressionAttributeValues: values,
    },
  };
}

async function sendItems(p: FanOutRecord, queued: Queueing): Promise<void> {
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
          if (outcome.reasons[0]?.code === "ConditionalCheckFailed") return undefined; // the run is no longer running
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

/**
 * The fewest free slots a countdown refills: a refill is a transaction with the parent and the
 * run's check (about 7 write units besides its items, whatever their number), so a task with many
 * slots refills them ten at a time rather than as each batch of completions frees a few. A slot
 * waits at most until nine more items finish; the last items (fewer than that left) and a task with
 * nothing active are refilled at once.
 */
const minRefill = (p: FanOutRecord) =>
  Math.min(Math.max(1, Math.min(10, Math.floor(p.concurrency / 10))), unqueued(p));

/**
 * What a countdown did:
 * - `ended`: it settled the parent (the graph must be evaluated);
 * - `counted`: it counted its items and refilled the slots they freed, in a transaction that also
 *   checked the run is running and within its deadline, and the parent is still running: nothing
 *   else of the run can have changed through it;
 * - `deferred`: it counted its items, on a parent still running with items active, and left the
 *   slots they freed for a later countdown (fewer than `minRefill`, or none left to fill): nothing
 *   of the run's graph changed, and the items still active bring the next countdown (a run cancelled
 *   or past its deadline meanwhile is wound down by its cancel, or by its look at the deadline);
 * - `other`: anything else (its items were counted already, the run or the parent is not running,
 *   a slot is left to fill): the caller looks at the whole run.
 */
export type CountDownResult = "ended" | "counted" | "deferred" | "other";

/**
 * Counts settled items down on their parent, exactly once each, refills the slots they free and,
 * when nothing is active and nothing is left (or the task failed for good), settles the parent.
 */
export async function countDown(
  runId: string,
  task: string,
  completions: CompletionMessage[],
  now = new Date(),
): Promise<CountDownResult> {
  const byItem = new Map<number, CompletionMessage>();
  for (const c of completions) {
    if (c.item !== undefined) byItem.set(c.item, c);
  }
  let todo = [...byItem.values()];
  if (todo.length === 0) return "other";
  let parent: FanOutRecord | undefined;
  /** The run is not running (or past its deadline): count the items, refill and end nothing. */
  let stopped = false;
  // contention on every try throws (ContentionError): never drop a count; failing leaves the
  // completions on the queue, to be counted later
  return retryOnContention(
    `count ${todo.length} item(s) of ${runId}/${task} down`,
    async (): Promise<CountDownResult | LostRace> => {
      parent ??= await readParent(runId, task);
      // a cancelled task still counts its running items' results, and starts nothing
      if (parent?.status !== "running" && parent?.status !== "cancelled") return "other";
      // a duplicate or redelivered completion finds its item counted, and a late one of an attempt from
      // before a redrive finds it put back: they count nothing, and write nothing (F1, I7)
      const current = parent;
      todo = todo.filter((c) => countable(current, c));
      if (todo.length === 0) return "other";
      const count = (outcome: CompletionMessage["outcome"]) =>
        todo.filter((c) => c.outcome === outcome).length;
      const counted: FanOutRecord = {
        ...parent,
        ...withCounted(
          parent,
          todo.map((c) => c.item as number),
        ),
        version: parent.version + 1,
        active: parent.active - todo.length,
        succeededItems: parent.succeededItems + count("succeeded"),
        failedItems: parent.failedItems + count("failed"),
        cancelledItems: (parent.cancelledItems ?? 0) + count("cancelled"),
      };
      // (the items counted are not written: only the parent is, so a refill may take a whole transaction's slots)
      const free = stopped ? 0 : freeSlots(counted);
      const refill = free >= minRefill(counted) ? Math.min(free, slotsPerTransaction(counted)) : 0;
      const { batch, after } = takeItems(counted, refill);
      const ended =
        !stopped &&
        parent.status === "running" &&
        after.active === 0 &&
        (failing(after) || unqueued(after) === 0);
      if (ended) {
        after.status = failing(after) ? "failed" : "succeeded";
        if (failing(after)) {
          after.error = {
            code: "ItemsFailed",
            message: `${after.failedItems} of ${after.total} items failed (${after.maxFailures} tolerated)`,
          };
        }
      }
      const dispatches = refill > 0 || ended;
      await point("countdown:before-commit", { runId, task, version: parent.version });
      const queued = await queueItems(parent, batch, now);
      const outcome = await transact([
        ...(dispatches ? [whileRunning(runId, now)] : []),
        parentUpdate(parent, after, now),
        ...queued.writes,
        ...(ended
          ? [
              historyEvent(runId, after.status === "succeeded" ? "TaskSucceeded" : "TaskFailed", {
                task,
                detail: {
                  succeeded: after.succeededItems,
                  failed: after.failedItems,
                  total: after.total,
                  error: after.error,
                },
              }),
            ]
          : []),
      ]);
      if (outcome.ok) {
        if (refill > 0) await sendItems(parent, queued);
        if (ended) return "ended";
        // `counted` only when the transaction checked that the run runs (and is within its deadline)
        if (dispatches) return parent.status === "running" && freeSlots(after) === 0 ? "counted" : "other";
        return !stopped && parent.status === "running" && after.active > 0 ? "deferred" : "other";
      }
      if (dispatches && outcome.reasons[0]?.code === "ConditionalCheckFailed") {
        // the run ended (or its deadline passed): count without refilling, on the parent as read
        // (the task keeps its status: a run past its deadline is timed out by advance, which cancels it)
        stopped = true;
        return lostRace(outcome.reasons);
      }
      // the parent moved (another handler counted, filled or cancelled): read it again, and drop what
      // it counted meanwhile
      parent = undefined;
      return lostRace(outcome.reasons);
    },
    // why twice the default: see COUNTDOWN_TRIES
    { tries: COUNTDOWN_TRIES },
  );
}

/**
 * A with-items task's output: its items' outputs in index order, failed items (and items never
 * queued: the task failed first) as null.
 */
export async function itemOutputs(parent: FanOutRecord): Promise<unknown[]> {
  const items = (await queryRunItems(parent.runId, keys.itemPrefix(parent.task))) as unknown as TaskRecord[];
  const outputs: unknown[] = Array.from({ length: parent.total }, () => null);
  for (const item of items)
    if (item.status === "succeeded") outputs[item.item as number] = item.output ?? null;
  return outputs;
}
