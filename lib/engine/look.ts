/**
 * The sweeper's looks at a run and at a with-items task, handled by `advance`, for the executions
 * under them. Executions are in no index: an entry in the sweeper's costs two index write units an
 * execution (put when it is queued, deleted with its result), a quarter of what a fan-out item
 * cost. An execution keeps its `sweepAt` (when to look at it) but no `sweepShard`; the look at its
 * run (a plain task) or at its with-items task (an item) does what the sweeper did for it:
 *
 *   settled, not counted   an item whose completion was lost (its worker died before sending it, or
 *                          the advance holding it died): counted by the caller, once (counted.ts)
 *   overdue                queued and never claimed (the send was lost with its sender; an item
 *                          queued without its record has none yet: items.ts), a retry
 *                          whose message is gone, a lease that expired (its worker died): its task
 *                          message is sent again, in a group of its own, with the time it fell due
 *                          and the look period since in the dedup id (two looks at one overdue
 *                          execution in one period send it once; a look a period later sends it
 *                          again, in case a worker died holding the copy); the worker's
 *                          conditional claim decides what happens
 *   due later              the next look is moved up to the first such time (a lease's end, a
 *                          retry's), so that a dead worker is replaced seconds after its lease
 *                          ends, not at the next periodic look
 *
 * A with-items task's look reads only the items dispatched and not counted: from the lowest not
 * counted to the last queued (about the concurrency window); an index there without a record was
 * queued no later than the items above it, or the last fill (`queuedBy`), and its message, sent
 * again, carries its record from its chunk. A run's look has its plain executions
 * from advance's read of the run. A task or run that ended keeps its look until nothing of it is
 * left unsettled (a cancelled task's running items finish, its queued ones are cancelled by their
 * claims; a cancelled run's wind-down cancels what nobody works on); then the look takes it out of
 * the sweeper's index: a task with the version-checked update of its counters (fill.ts), a run
 * with its wind-down (lock.ts).
 */
import { config } from "../config";
import { type CompletionMessage, completionOf, sendTasks, type TaskMessage } from "../queue";
import { updateIf } from "../store/conditional";
import { timeOfSortId } from "../store/events";
import { type Key, keys } from "../store/keys";
import { queryRunRange, type RunRecord } from "../store/run-state";
import { transact } from "../store/transaction";
import { isCounted } from "./counted";
import { isSettled } from "./evaluate";
import { parentUpdate } from "./fill";
import { queuedBy, queuedItems } from "./items";
import { messagesOnRun, unwrittenOnRun } from "./plan";
import {
  addSeconds,
  type FanOutRecord,
  isFanOut,
  QUEUED_SWEEP_SECONDS,
  type TaskItem,
  type TaskRecord,
} from "./task-record";

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
  const { records, unwritten } = await dispatchedItems(parent);
  const lost = records
    .filter((item) => isSettled(item.status) && !isCounted(parent, item.item as number))
    .map((item) => completionOf(item, item.status as CompletionMessage["outcome"]));
  const next = await resendOverdue(
    [
      ...records.filter((item) => !isSettled(item.status)).map(looked),
      ...(await unwrittenItems(parent, unwritten, records, now)),
    ],
    now,
  );
  if (next !== undefined) await moveUp(keys.task(parent.runId, parent.task), parent.sweepAt, next, now);
  return lost;
}

/**
 * The look at a run does for its plain executions what the look at a with-items task does for its
 * items: a task queued on the run without its record (dispatch.ts) is due QUEUED_SWEEP_SECONDS
 * after its queueing, and its message, sent again, carries its record planned again (plan.ts). A
 * run that ended (cancelled, timed out) re-sends nothing, for its wind-down cancels what nobody
 * works on (advance.ts) and a first claim finds it ended (claim.ts), but it is looked at again
 * when a live lease ends.
 */
export async function lookAtTasks(run: RunRecord, tasks: TaskItem[], now = new Date()): Promise<void> {
  const running = run.status === "running";
  const open = tasks.filter((t): t is TaskRecord => !isFanOut(t) && !isSettled(t.status));
  const dueOf = (queuedAs: string) =>
    addSeconds(new Date(timeOfSortId(queuedAs)), QUEUED_SWEEP_SECONDS).toISOString();
  const unwritten = unwrittenOnRun(run, tasks);
  const overdue = running ? unwritten.filter(([, queuedAs]) => dueOf(queuedAs) <= now.toISOString()) : [];
  const again = new Map((await messagesOnRun(run, tasks, overdue, now)).map((m) => [m.task, m]));
  const next = await resendOverdue(
    [
      ...open.map(looked),
      ...unwritten.map(([task, queuedAs]) => ({
        message: again.get(task) ?? { runId: run.runId, task },
        due: dueOf(queuedAs),
      })),
    ],
    now,
    running,
  );
  if (next !== undefined) await moveUp(keys.run(run.runId), run.sweepAt, next, now);
}

/** An execution to look at: its task message, and when it falls due (never: undefined). */
interface Looked {
  message: TaskMessage;
  due: string | undefined;
}

/** An execution with a record: due as `dueAt` says, its message from its keys and attempt. */
function looked(e: TaskRecord): Looked {
  const { runId, task, item, attempt } = e;
  return {
    message: { runId, task, ...(item === undefined ? {} : { item }), ...(attempt ? { attempt } : {}) },
    due: dueAt(e),
  };
}

/**
 * Items queued without their records (items.ts) and not claimed yet: each due QUEUED_SWEEP_SECONDS
 * after it was queued, at the latest (`queuedBy`); the message of one overdue carries its record.
 */
async function unwrittenItems(
  parent: FanOutRecord,
  indices: number[],
  written: TaskRecord[],
  now: Date,
): Promise<Looked[]> {
  const queuedAs = new Map(indices.map((index) => [index, queuedBy(parent, index, written)]));
  const dueOf = (index: number) =>
    addSeconds(new Date(timeOfSortId(queuedAs.get(index) as string)), QUEUED_SWEEP_SECONDS).toISOString();
  const overdue = indices.filter((index) => dueOf(index) <= now.toISOString());
  const queued =
    parent.chunk && overdue.length > 0
      ? await queuedItems(
          { ...parent, chunk: parent.chunk },
          new Map(overdue.map((index) => [index, queuedAs.get(index) as string])),
        )
      : new Map();
  return indices.map((item) => ({
    message: { runId: parent.runId, task: parent.task, item, queued: queued.get(item) },
    due: dueOf(item),
  }));
}

/**
 * Sends the task messages of the executions that are overdue again (`resend`), each in a group of
 * its own, with the time it fell due and the look period since in the dedup id (`resendGeneration`);
 * returns when the first of the others falls due.
 */
async function resendOverdue(executions: Looked[], now: Date, resend = true): Promise<string | undefined> {
  const overdue: Looked[] = [];
  let next: string | undefined;
  for (const e of executions) {
    if (e.due === undefined) continue; // parked for a slot: the slot's hand-over sends its message
    if (e.due > now.toISOString()) {
      if (next === undefined || e.due < next) next = e.due;
      continue;
    }
    overdue.push(e);
  }
  if (resend && overdue.length > 0) {
    const generationOf = new Map(overdue.map((o) => [o.message, resendGeneration(o.due as string, now)]));
    await sendTasks(
      overdue.map((o) => o.message),
      (message) => generationOf.get(message) as string,
    );
  }
  return next;
}

/**
 * The generation of an overdue execution's re-send: when it fell due, and how many look periods
 * (QUEUED_SWEEP_SECONDS) ago. Looks racing within one period send it once (one dedup id). A look a
 * period later sends it again: the copy sent before may have been taken by a worker that died
 * before claiming it, which hides that copy for the queue's visibility timeout (15 minutes as
 * deployed), and SQS would drop a copy with the same dedup id for 5 minutes.
 */
function resendGeneration(due: string, now: Date): string {
  const periods = Math.floor((now.getTime() - Date.parse(due)) / (QUEUED_SWEEP_SECONDS * 1000));
  return periods > 0 ? `${due}+${periods}` : due;
}

/**
 * The items dispatched and not counted, from the lowest not counted to the last queued: their
 * records, and the indices there without one (queued without it, not claimed yet: items.ts).
 */
async function dispatchedItems(
  parent: FanOutRecord,
): Promise<{ records: TaskRecord[]; unwritten: number[] }> {
  const { runId, task } = parent;
  // items a redrive queued again are below `countedBelow`, yet not counted
  const redo = new Set(parent.redo ?? []);
  const requeued = Object.keys(parent.putBack ?? {})
    .map(Number)
    .filter((i) => !redo.has(i));
  const low = Math.min(parent.countedBelow ?? 0, ...requeued);
  const high = parent.nextIndex - 1;
  // (DynamoDB refuses a BETWEEN whose bounds are the wrong way round)
  if (low > high) return { records: [], unwritten: [] };
  const from = keys.item(runId, task, low).sk;
  const to = keys.item(runId, task, high).sk;
  const records = (await queryRunRange(runId, from, to)) as unknown as TaskRecord[];
  const written = new Set(records.map((r) => r.item));
  const unwritten: number[] = [];
  // every fresh index below nextIndex was queued: one counted has its record (all below countedBelow)
  for (let index = parent.countedBelow ?? 0; index <= high; index++)
    if (!written.has(index) && !isCounted(parent, index) && !redo.has(index)) unwritten.push(index);
  return { records, unwritten };
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

/**
 * Has an execution looked at by `at` at the latest, through its run (a plain task) or its
 * with-items task (an item), when that is sooner than the next periodic look can be: a callback
 * with a short heartbeat window or timeout (callback.ts). Anything due later is seen by a periodic
 * look first, which moves the next one up (a claim's lease, a retry).
 */
export async function lookBy(
  execution: { runId: string; task: string; item?: number },
  at: string,
  now = new Date(),
): Promise<void> {
  if (Date.parse(at) - now.getTime() >= QUEUED_SWEEP_SECONDS * 1000) return;
  const { runId, task, item } = execution;
  await moveUp(item === undefined ? keys.run(runId) : keys.task(runId, task), undefined, at, now);
}

/** Moves the next look of the run or with-items task at `key` up to `next`, unless one is set sooner. */
async function moveUp(key: Key, set: string | undefined, next: string, now: Date): Promise<void> {
  // the look set is sooner (or about as soon): nothing to move
  if (set && set > now.toISOString() && Date.parse(set) - Date.parse(next) < MOVE_UP_MARGIN_MS) return;
  await updateIf({
    TableName: config.tableName(),
    Key: key,
    UpdateExpression: "SET sweepAt = :next",
    // closes: putting off a sooner look that another look set meanwhile (a look due now is the one
    // being taken, whose sweeper may not have moved it on yet); and putting a run or task back in
    // the index once it left it (nothing of it left to look at)
    ConditionExpression: "attribute_exists(sweepShard) AND (sweepAt > :next OR sweepAt <= :now)",
    ExpressionAttributeValues: { ":next": next, ":now": now.toISOString() },
  });
}
