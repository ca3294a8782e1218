/**
 * A with-items task: its start (the items evaluated and stored, items.ts; the parent put), and its
 * output. Its items are queued into free slots by fills (fill.ts) and counted down by countdowns
 * (countdown.ts).
 */
import { config } from "../config";
import type { TaskDefinition, WorkflowDefinition } from "../definition/types";
import { ExpressionError } from "../errors";
import { evaluateTemplate } from "../expression";
import { mapLimit } from "../map-limit";
import { IF_ABSENT } from "../store/conditional";
import { historyEvent } from "../store/events";
import { keys } from "../store/keys";
import { queryRunItems } from "../store/run-state";
import { transact } from "../store/transaction";
import { planTasks, type TemplateContext, whileRunning } from "./dispatch";
import { fill } from "./fill";
import { chunkSize, writeChunks } from "./items";
import { type ErrorInfo, type FanOutRecord, nextLook, sweepShard, type TaskRecord } from "./task-record";

/** The most items one with-items task may have. */
export const MAX_ITEMS = 50_000;
/** Items evaluated at once when a task starts. */
const EVALUATE_CONCURRENCY = 16;

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
        ConditionExpression: IF_ABSENT,
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
