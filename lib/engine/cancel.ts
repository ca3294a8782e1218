import { config } from "../config";
import { completionOf, sendCompletion } from "../queue";
import { historyEvent } from "../store/events";
import { keys } from "../store/keys";
import { queryRunItems } from "../store/run-state";
import { transact, type Write } from "../store/transaction";
import { isSuspended } from "./callback-token";
import { FIRST_CLAIM, whileEnded } from "./dispatch";
import { point } from "./interleave";
import { transactGivingBack } from "./slot";
import { type FanOutRecord, isFanOut, type TaskItem, type TaskRecord } from "./task-record";

/**
 * Whether nobody works on the execution: queued, running under a lease that expired (its worker
 * died), or a callback task waiting for its token (no worker holds it).
 */
function idle(record: TaskRecord, now = new Date()): boolean {
  return (
    record.status === "queued" ||
    isSuspended(record) ||
    (record.status === "running" && record.leaseUntil !== undefined && record.leaseUntil < now.toISOString())
  );
}

/**
 * The writes that cancel an execution (under `condition`, on `values`), with its TaskCancelled
 * event. Should an item's completion be lost (no task message may come for a parked or waiting
 * item), the look at its task counts it (look.ts).
 */
function cancellation(
  record: TaskRecord,
  now: Date,
  condition: string,
  values: Record<string, unknown>,
  detail?: Record<string, unknown>,
): Write[] {
  return [
    {
      Update: {
        TableName: config.tableName(),
        Key: keys.execution(record),
        UpdateExpression:
          "SET #status = :cancelled, endedAt = :now REMOVE sweepShard, sweepAt, notBefore, leaseUntil, slot",
        ConditionExpression: condition,
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ...values,
          ":cancelled": "cancelled",
          ":running": "running",
          ":attempt": record.attempt,
          ":now": now.toISOString(),
        },
      },
    },
    historyEvent(record.runId, "TaskCancelled", {
      task: record.task,
      item: record.item,
      attempt: record.attempt,
      ...(detail ? { detail } : {}),
    }),
  ];
}

/**
 * The run is no longer running (cancelled, timed out): an execution nobody works on (queued, or
 * left running by a worker that died) becomes cancelled, once. Executions whose worker is alive
 * are left to finish; their results are recorded and start nothing. Returns false when the
 * execution was not idle, or stopped being idle meanwhile (claimed, or settled by a late worker).
 */
export async function cancelIdle(record: TaskRecord, now = new Date()): Promise<boolean> {
  if (!idle(record, now)) return false;
  await point("cancel:before-write", { runId: record.runId, task: record.task, item: record.item });
  const suspended = isSuspended(record);
  // a slot it holds is given back with the cancellation; a place in a limit's queue is left to go stale
  const outcome = await transactGivingBack(
    record,
    [
      ...cancellation(
        record,
        now,
        // closes (both): a slot handed to it since it was read (cancelled as parked, that slot would never come back)
        (suspended
          ? // closes: a callback (or its timeout) settling the waiting execution while the cancellation sweeps it
            "attempt = :attempt AND #status = :running AND callbackToken = :token"
          : // closes: a worker claiming (or a late worker settling) the execution while the cancellation sweeps it
            "attempt = :attempt AND (#status = :queued OR (#status = :running AND leaseUntil < :now))") +
          (record.slot ? " AND slot = :slot" : " AND attribute_not_exists(slot)"),
        {
          ...(record.slot ? { ":slot": record.slot } : {}),
          ...(suspended ? { ":token": record.callbackToken } : { ":queued": "queued" }),
        },
      ),
      whileEnded(record.runId),
    ],
    now,
  );
  return outcome.ok;
}

/**
 * An attempt this worker just claimed, found to belong to a run no longer running: cancelled at
 * once, before its action is invoked. Returns false when the attempt moved on meanwhile.
 */
export async function cancelClaimed(record: TaskRecord, now = new Date()): Promise<boolean> {
  const outcome = await transact(
    cancellation(
      record,
      now,
      // closes: cancelling an attempt other than the one this worker claimed (its lease lost meanwhile)
      "#status = :running AND attempt = :attempt AND workerId = :worker",
      { ":worker": record.workerId },
      { reason: "RunNotRunning" },
    ),
  );
  return outcome.ok;
}

/**
 * The run was cancelled: a running with-items task becomes cancelled, so no slot is refilled.
 * Its queued items are cancelled when their messages arrive (the claim holds only while the run
 * runs); its running items finish and are recorded. It stays in the sweeper's index until every
 * item it dispatched is counted (look.ts): its looks are what re-send the items whose messages
 * were lost. Returns whether this call cancelled it.
 */
export async function cancelFanOut(parent: FanOutRecord, now = new Date()): Promise<boolean> {
  if (parent.status !== "running") return false;
  const outcome = await transact([
    {
      Update: {
        TableName: config.tableName(),
        Key: keys.task(parent.runId, parent.task),
        UpdateExpression: "SET #status = :cancelled, endedAt = :now, version = version + :one",
        // closes: a countdown settling the task while the cancellation marks it
        ConditionExpression: "#status = :running",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":cancelled": "cancelled",
          ":running": "running",
          ":now": now.toISOString(),
          ":one": 1,
        },
      },
    },
    historyEvent(parent.runId, "TaskCancelled", { task: parent.task }),
    whileEnded(parent.runId),
  ]);
  return outcome.ok;
}

/**
 * Items no message will come for: parked for a limit's slot, or waiting for their callback. They
 * are cancelled (and counted down, through their completion) by the call that cancelled their
 * task; should that call die first, a hand-over of the slot or the callback's timeout does it.
 */
async function cancelWaitingItems(parent: FanOutRecord, now: Date): Promise<void> {
  const items = (await queryRunItems(parent.runId, keys.itemPrefix(parent.task))) as unknown as TaskRecord[];
  for (const item of items.filter((i) => i.slot === "waiting" || isSuspended(i)))
    await cancelUnsent(item, now);
}

/**
 * Cancels an idle execution that no task message will come for (parked, or waiting for its
 * callback), and publishes its completion, as a worker's claim does for one whose message came.
 */
export async function cancelUnsent(record: TaskRecord, now = new Date()): Promise<void> {
  if (await cancelIdle(record, now)) await sendCompletion(completionOf(record, "cancelled"));
}

/**
 * After the run ended early (cancelled, timed out): nothing queued runs, no slot is refilled
 * (`tasks`: the run's executions, as read).
 */
export async function cancelRemaining(tasks: TaskItem[], now = new Date()): Promise<void> {
  for (const task of tasks) {
    if (!isFanOut(task)) await cancelIdle(task, now);
    else if (await cancelFanOut(task, now)) await cancelWaitingItems(task, now);
  }
}

/**
 * Cancels a task queued on its ended run without its record (dispatch.ts), its record planned
 * again (plan.ts): the record is put, cancelled, with its `TaskQueued` (at its queueing) and
 * `TaskCancelled`, unless its first claim put one first. A message of it still in flight, or held
 * by the worker that dispatched it (work.ts), then claims nothing, and the run's wind-down sees
 * all it waits for (lock.ts: without this, a held message's claim whose worker died before reading
 * the run left an execution running on a run no look would come to again).
 */
export async function cancelUnwritten(
  record: TaskRecord,
  queuedAs: string,
  now = new Date(),
): Promise<boolean> {
  const { sweepAt: _sweepAt, ...planned } = record;
  const outcome = await transact([
    {
      Put: {
        TableName: config.tableName(),
        Item: { ...keys.execution(record), ...planned, status: "cancelled", endedAt: now.toISOString() },
        // closes: a first claim racing the wind-down: whichever writes first decides, and the
        // other is judged from it
        ConditionExpression: FIRST_CLAIM,
        ExpressionAttributeNames: { "#status": "status" },
      },
    },
    historyEvent(record.runId, "TaskQueued", { task: record.task }, queuedAs),
    historyEvent(record.runId, "TaskCancelled", {
      task: record.task,
      attempt: record.attempt,
      detail: { reason: "RunNotRunning" },
    }),
    // closes: closing a task a redrive (of a timed-out run) just put back on the run
    whileEnded(record.runId),
  ]);
  return outcome.ok;
}
