/**
 * Concurrency-key locks (F5, I5): runs of a workflow whose `concurrencyKey` evaluates to the same
 * string never run at the same time. One item per key holds the lock's `holder` and the runs
 * `waiting` for it, in the order they queued. Every change is one conditional update, and taking
 * a place in the queue (an append) never conflicts with another, so many runs created at the
 * same instant queue without retrying.
 *
 * Timeline of one key:
 *   create A   SET holder = A               if attribute_not_exists(holder)
 *   create B   SET waiting = waiting + [B]  if attribute_exists(holder)          B is `waiting`
 *   A ends     SET holder = B REMOVE waiting[0]  if holder = A AND waiting[0] = B,
 *              in one transaction with A's terminal status and B's start: the lock passes once
 *   B ends     REMOVE holder                if holder = B AND size(waiting) = 0: the next create takes it
 *
 * The lock is taken when the run is created, `pending` included, so a run created with
 * `start: false` holds it too (the bug of F5 was a guard that ignored pending runs).
 */
import { config } from "../config";
import type { WorkflowDefinition } from "../definition/types";
import { ConcurrencyKeyBusyError, ExpressionError, InvalidInputError } from "../errors";
import { evaluateTemplate } from "../expression";
import { lostRace, retryOnContention } from "../store/contention";
import { type EventType, historyEvent } from "../store/events";
import { keys } from "../store/keys";
import { type RunRecord, readItem, readTasks } from "../store/run-state";
import { refusedAt, type TxItem, transact, type Write } from "../store/transaction";
import { getWorkflowVersion, type WorkflowVersion } from "../workflows";
import { WHILE_ENDED } from "./dispatch";
import { planStart, type RunStart, startTransition } from "./start";
import { isFanOut } from "./task-record";

/** The guard of taking a concurrency key's lock: nobody holds it (F5, I5). */
export const LOCK_FREE = "attribute_not_exists(holder)";

export interface LockRecord {
  workflow: string;
  /** The concurrency key (`key` is a reserved word in DynamoDB expressions). */
  lockKey: string;
  /** The run that holds the lock; absent when it is free. */
  holder?: string;
  /** Runs waiting for it, in the order they queued. */
  waiting: string[];
}

export const MAX_CONCURRENCY_KEY_LENGTH = 512;

/** The run's concurrency key: the definition's `concurrencyKey` evaluated on the run input. */
export async function concurrencyKeyOf(
  definition: WorkflowDefinition,
  input: unknown,
): Promise<string | undefined> {
  if (definition.concurrencyKey === undefined) return undefined;
  let value: unknown;
  try {
    value = await evaluateTemplate(definition.concurrencyKey, { input }, "concurrencyKey");
  } catch (error) {
    if (!(error instanceof ExpressionError)) throw error;
    throw new InvalidInputError("the run's concurrency key could not be evaluated", [
      { path: "concurrencyKey", message: error.message },
    ]);
  }
  const key = typeof value === "number" || typeof value === "boolean" ? String(value) : value;
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_CONCURRENCY_KEY_LENGTH) {
    const message = `the concurrencyKey gave ${JSON.stringify(value)}: it must give a string of 1 to ${MAX_CONCURRENCY_KEY_LENGTH} characters`;
    throw new InvalidInputError("the run's concurrency key is not usable", [
      { path: "concurrencyKey", message },
    ]);
  }
  return key;
}

export function readLock(workflow: string, key: string): Promise<LockRecord | undefined> {
  return readItem<LockRecord>(keys.lock(workflow, key));
}

const lockUpdate = (
  workflow: string,
  key: string,
  update: string,
  condition: string,
  values: Record<string, unknown>,
): TxItem => ({
  Update: {
    TableName: config.tableName(),
    Key: keys.lock(workflow, key),
    UpdateExpression: update,
    ConditionExpression: condition,
    ExpressionAttributeValues: values,
    ReturnValuesOnConditionCheckFailure: "ALL_OLD",
  },
});

/**
 * A new run takes the lock if it was free when read, or joins the end of the queue. If the lock
 * moved since (taken, or let go), the write's condition fails and the caller reads it again.
 */
export function acquireOrWait(
  lock: LockRecord | undefined,
  workflow: string,
  key: string,
  runId: string,
): { acquired: boolean; holder?: string; write: TxItem } {
  if (!lock?.holder) {
    const write = lockUpdate(
      workflow,
      key,
      "SET holder = :run, workflow = :workflow, lockKey = :key, waiting = if_not_exists(waiting, :none)",
      // closes: two creates taking the same free lock at once (F5)
      LOCK_FREE,
      { ":run": runId, ":workflow": workflow, ":key": key, ":none": [] },
    );
    return { acquired: true, write };
  }
  const write = lockUpdate(
    workflow,
    key,
    "SET waiting = list_append(waiting, :run)",
    // closes: queuing behind a holder that let go meanwhile (nobody would ever pass the lock on)
    "attribute_exists(holder)",
    { ":run": [runId] },
  );
  return { acquired: false, holder: lock.holder, write };
}

/**
 * What a run that ended and starts again (a redrive) writes to hold its key again: nothing but a
 * check if it still holds it, the lock if it is free; another run holding it is `ConcurrencyKeyBusy`.
 */
export async function retake(run: RunRecord): Promise<TxItem[]> {
  if (run.concurrencyKey === undefined) return [];
  const lock = await readLock(run.workflow, run.concurrencyKey);
  if (lock?.holder && lock.holder !== run.runId)
    throw new ConcurrencyKeyBusyError(run.concurrencyKey, lock.holder);
  if (!lock?.holder) return [acquireOrWait(lock, run.workflow, run.concurrencyKey, run.runId).write];
  return [
    {
      ConditionCheck: {
        TableName: config.tableName(),
        Key: keys.lock(run.workflow, run.concurrencyKey),
        // closes: restarting a run whose key passed on since it was read (two runs would share it)
        ConditionExpression: "holder = :run",
        ExpressionAttributeValues: { ":run": run.runId },
      },
    },
  ];
}

/** A waiting run that got the lock: started (its tasks to send), or now `pending` for a trigger. */
export interface Promoted {
  run: RunRecord;
  workflow: WorkflowVersion;
  start?: RunStart;
}

export interface Release {
  /** The writes that go into the ending run's own transaction. */
  writes: Write[];
  promoted?: Promoted;
}

/**
 * What releasing `run`'s lock takes, to be written in the same transaction as its terminal
 * status: the lock passes to the oldest waiting run, which starts (or becomes `pending`) in that
 * same transaction, or the lock is freed. A waiting run that leaves (cancelled) is taken off the
 * queue instead. Undefined when the run has no lock to give back.
 */
export async function release(run: RunRecord, now = new Date()): Promise<Release | undefined> {
  if (run.concurrencyKey === undefined) return undefined;
  const lock = await readLock(run.workflow, run.concurrencyKey);
  if (!lock) return undefined;
  const event = (type: EventType, runId: string, detail: Record<string, unknown>) =>
    historyEvent(runId, type, { detail: { concurrencyKey: lock.lockKey, ...detail } });
  if (lock.holder !== run.runId) {
    const place = lock.waiting.indexOf(run.runId);
    if (place < 0) return undefined;
    const leave = lockUpdate(
      lock.workflow,
      lock.lockKey,
      `REMOVE waiting[${place}]`,
      // closes: taking another run off the queue, when the queue moved since it was read
      `waiting[${place}] = :run`,
      { ":run": run.runId },
    );
    return { writes: [leave] };
  }
  const [nextId] = lock.waiting;
  const next = nextId ? await readItem<RunRecord>(keys.run(nextId)) : undefined;
  const pass = next
    ? lockUpdate(
        lock.workflow,
        lock.lockKey,
        "SET holder = :next REMOVE waiting[0]",
        // closes: passing the lock twice, or to anyone but the first in line
        "holder = :run AND waiting[0] = :next",
        { ":run": run.runId, ":next": next.runId },
      )
    : lockUpdate(
        lock.workflow,
        lock.lockKey,
        "REMOVE holder",
        // closes: letting go while a run just queued behind (it would wait forever)
        "holder = :run AND size(waiting) = :zero",
        { ":run": run.runId, ":zero": 0 },
      );
  const writes = [pass, event("LockReleased", run.runId, next ? { to: next.runId } : {})];
  if (!next) return { writes };
  writes.push(event("LockAcquired", next.runId, { from: run.runId }));
  const workflow = await getWorkflowVersion(next.workflow, next.version);
  const start = next.startOnLock ? await planStart(next, workflow, now) : undefined;
  writes.push(startTransition(next.runId, start, "waiting"), ...(start?.writes ?? []));
  const status = start ? "running" : "pending";
  return { writes, promoted: { run: { ...next, ...start?.fields, status }, workflow, start } };
}

/**
 * Gives back the lock of a run that ended early (cancelled, timed out) once none of its actions
 * runs any more and none of its executions is queued (the wind-down cancels those), so that the
 * next run of the key never overlaps its last actions (I5), and takes the run out of the
 * sweeper's index (it kept its look until then: end-run.ts). Called after each of its late
 * completions and looks; a no-op while something runs or waits, and once both are done.
 */
export async function releaseWhenIdle(run: RunRecord, now = new Date()): Promise<Promoted | undefined> {
  if (run.concurrencyKey === undefined && run.sweepShard === undefined) return undefined;
  // the lock moving on every try throws (ContentionError), as it threw before: the ended run keeps
  // its lock (and its place in the sweeper's index) until a later call gives it back (a late
  // completion, the sweeper's look at the run)
  return retryOnContention(`give back the concurrency-key lock of run ${run.runId}`, async () => {
    // (a queued execution too: one whose cancel lost its race, parked for a slot after the run
    // ended, is cancelled by a later look's wind-down, which needs the run still in the index)
    const busy = (await readTasks(run.runId)).some((t) =>
      isFanOut(t) ? t.active > 0 : t.status === "running" || t.status === "queued",
    );
    if (busy) return undefined;
    const plan = run.concurrencyKey === undefined ? undefined : await release(run, now);
    if (!plan && run.sweepShard === undefined) return undefined;
    // the run leaves the sweeper's index with its lock (the lock's condition decides for both)
    const leaveSweep: TxItem = {
      Update: {
        TableName: config.tableName(),
        Key: keys.run(run.runId),
        UpdateExpression: "REMOVE sweepShard, sweepAt",
        // closes: a late wind-down giving away the key of (or taking out of the index) a run a
        // redrive restarted meanwhile
        ConditionExpression: WHILE_ENDED,
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":running": "running" },
      },
    };
    const outcome = await transact([...(plan?.writes ?? []), leaveSweep]);
    if (outcome.ok) return plan?.promoted;
    if (refusedAt(outcome, keys.run(run.runId))) return undefined; // redriven: it keeps its key
    // the lock moved (a run joined its queue): read it again
    return lostRace(outcome.reasons);
  });
}
