/**
 * The sweeper's look at a with-items task, handled by `advance`. A with-items task's items are not
 * in the sweeper's index: an entry there costs two index write units an item (put when the item is
 * queued, deleted with its result), a quarter of what a fan-out item cost. An item keeps its
 * `sweepAt` (when to look at it, set as for any execution) but no `sweepShard`, so it is in no
 * index, and the look at its task does for its items what the sweeper does for plain executions:
 *
 *   settled, not counted   its completion was lost (its worker died before sending it, or the
 *                          advance holding it died): counted by the caller, once (counted.ts)
 *   overdue                queued and never claimed (the fill died before its send), a retry whose
 *                          message is gone, a lease that expired (its worker died): its task
 *                          message is sent again, in a group of its own, with the time it fell due
 *                          in the dedup id (two looks at one overdue item send it once); the
 *                          worker's conditional claim decides what happens
 *   due later              the task's next look is moved up to the first such time (a lease's end,
 *                          a retry's), so that a dead worker is replaced seconds after its lease
 *                          ends, not at the next periodic look
 *
 * Only items dispatched and not counted are read: from the lowest not counted to the last queued
 * (about the concurrency window). A task that ended keeps its look until every item it dispatched
 * is counted (a cancelled task's running items finish, its queued ones are cancelled by their
 * claims); then the look takes it out of the sweeper's index, with the version-checked update of
 * its counters (fanout.ts).
 */
import { config } from "../config";
import { type CompletionMessage, completionOf, sendTasks, type TaskMessage } from "../queue";
import { updateIf } from "../store/conditional";
import { keys } from "../store/keys";
import { queryRunRange } from "../store/run-state";
import { transact } from "../store/transaction";
import { isCounted } from "./counted";
import { isSettled } from "./evaluate";
import { parentUpdate } from "./fanout";
import type { FanOutRecord, TaskRecord } from "./task-record";

/** A next look this close to the one already set is not worth a write. */
const MOVE_UP_MARGIN_MS = 1000;

/**
 * Looks at a with-items task: re-sends its overdue items, moves its next look up to the first item
 * that falls due, and returns the completions of its settled items not counted yet.
 */
export async function lookAtItems(parent: FanOutRecord, now = new Date()): Promise<CompletionMessage[]> {
  if (parent.active === 0) {
    // every item it dispatched is counted: a task that ended is looked at no more
    if (parent.status !== "running" && parent.sweepShard !== undefined)
      await transact([parentUpdate(parent, { ...parent, version: parent.version + 1 }, now)]);
    return [];
  }
  const items = await dispatchedItems(parent);
  const lost: CompletionMessage[] = [];
  const overdue: { message: TaskMessage; due: string }[] = [];
  let next: string | undefined;
  for (const item of items) {
    const index = item.item as number;
    if (isSettled(item.status)) {
      if (!isCounted(parent, index))
        lost.push(completionOf(item, item.status as CompletionMessage["outcome"]));
      continue;
    }
    const due = dueAt(item);
    if (due === undefined) continue; // parked for a slot: the slot's hand-over sends its message
    if (due <= now.toISOString()) {
      const { runId, task, attempt } = item;
      overdue.push({ message: { runId, task, item: index, ...(attempt ? { attempt } : {}) }, due });
    } else if (next === undefined || due < next) next = due;
  }
  const dueOf = new Map(overdue.map((o) => [o.message, o.due]));
  await sendTasks(
    overdue.map((o) => o.message),
    (message) => dueOf.get(message) as string,
  );
  if (next !== undefined) await moveUp(parent, next, now);
  return lost;
}

/** The items dispatched and not counted: from the lowest not counted to the last queued. */
async function dispatchedItems(parent: FanOutRecord): Promise<TaskRecord[]> {
  const { runId, task } = parent;
  // items a redrive queued again are below `countedBelow`, yet not counted
  const redo = new Set(parent.redo ?? []);
  const requeued = Object.keys(parent.putBack ?? {})
    .map(Number)
    .filter((i) => !redo.has(i));
  const low = Math.min(parent.countedBelow ?? 0, ...requeued);
  const high = parent.nextIndex - 1;
  if (low > high) return []; // (DynamoDB refuses a BETWEEN whose bounds are the wrong way round)
  const from = keys.item(runId, task, low).sk;
  const to = keys.item(runId, task, high).sk;
  return (await queryRunRange(runId, from, to)) as unknown as TaskRecord[];
}

/**
 * When an item not settled needs a look: a running one when its lease ends (claims and heartbeats
 * leave `sweepAt` alone), any other at its `sweepAt` (queued: its queueing's, or its retry's);
 * never, one parked for a slot.
 */
function dueAt(item: TaskRecord): string | undefined {
  if (item.status === "running" && item.leaseUntil) return item.leaseUntil;
  return item.sweepAt;
}

/** Moves the task's next look up to `next`, unless one is set sooner. */
async function moveUp(parent: FanOutRecord, next: string, now: Date): Promise<void> {
  const set = parent.sweepAt;
  // the look set is sooner (or about as soon): nothing to move
  if (set && set > now.toISOString() && Date.parse(set) - Date.parse(next) < MOVE_UP_MARGIN_MS) return;
  await updateIf({
    TableName: config.tableName(),
    Key: keys.task(parent.runId, parent.task),
    UpdateExpression: "SET sweepAt = :next",
    // closes: putting off a sooner look that another look set meanwhile (a look due now is the one
    // being taken, whose sweeper may not have moved it on yet); and putting a task back in the
    // index once it left it (it ended, every item counted)
    ConditionExpression: "attribute_exists(sweepShard) AND (sweepAt > :next OR sweepAt <= :now)",
    ExpressionAttributeValues: { ":next": next, ":now": now.toISOString() },
  });
}
