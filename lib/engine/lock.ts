/**
 * Concurrency-key locks (F5, I5): runs of a workflow whose `concurrencyKey` evaluates to the same
 * string never run at the same time. One item per key holds the lock's `holder` and the runs
 * `waiting` for it, in creation order, with a `version` every change is conditional on.
 *
 * Timeline of one key:
 *   create A   lock absent → Put {holder: A}               (attribute_not_exists: two creates can't both take it)
 *   create B   holder A → Put {holder: A, waiting: [B]}   (version = :v)   B is `waiting`
 *   A ends     Put {holder: B, waiting: []} + A's terminal status + B waiting → running/pending,
 *              all in one transaction: the lock passes exactly once, with the end of its holder
 *   B ends     Put {waiting: []} (no holder): the next create takes it
 *
 * The lock is taken when the run is created, `pending` included, so a run created with
 * `start: false` holds it too (the bug of F5 was a guard that ignored pending runs).
 */
import { config } from "../config";
import type { WorkflowDefinition } from "../definition/types";
import { ExpressionError, InvalidInputError } from "../errors";
import { evaluateTemplate } from "../expression";
import { type EventType, eventPut } from "../store/events";
import { keys } from "../store/keys";
import { type RunRecord, readItem, readTasks } from "../store/run-state";
import { type TxItem, transact } from "../store/transaction";
import { getWorkflowVersion, type WorkflowVersion } from "../workflows";
import { planStart, type RunStart } from "./start";
import { isFanOut } from "./task-record";

export interface LockRecord {
  workflow: string;
  key: string;
  /** The run that holds the lock; absent when it is free. */
  holder?: string;
  /** Runs waiting for it, oldest first. */
  waiting: string[];
  version: number;
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

/** The write that moves the lock from `before` (as read) to `after`. */
export function lockWrite(before: LockRecord | undefined, after: Omit<LockRecord, "version">): TxItem {
  return {
    Put: {
      TableName: config.tableName(),
      Item: { ...keys.lock(after.workflow, after.key), ...after, version: (before?.version ?? 0) + 1 },
      // closes: two runs taking, joining or passing on the same lock from one reading of it (F5)
      ConditionExpression: before ? "version = :version" : "attribute_not_exists(pk)",
      ExpressionAttributeValues: before ? { ":version": before.version } : undefined,
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
    },
  };
}

/** A new run takes the lock if it is free, or joins the end of the queue. */
export function acquireOrWait(
  before: LockRecord | undefined,
  workflow: string,
  key: string,
  runId: string,
): { acquired: boolean; after: Omit<LockRecord, "version"> } {
  const waiting = before?.waiting ?? [];
  if (!before?.holder) return { acquired: true, after: { workflow, key, holder: runId, waiting } };
  return { acquired: false, after: { workflow, key, holder: before.holder, waiting: [...waiting, runId] } };
}

/** A waiting run that got the lock: started (its tasks to send), or now `pending` for a trigger. */
export interface Promoted {
  run: RunRecord;
  workflow: WorkflowVersion;
  start?: RunStart;
}

export interface Release {
  /** The writes that go into the ending run's own transaction. */
  writes: TxItem[];
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
    eventPut(runId, type, { detail: { concurrencyKey: lock.key, ...detail } });
  if (lock.holder !== run.runId) {
    if (!lock.waiting.includes(run.runId)) return undefined;
    const waiting = lock.waiting.filter((id) => id !== run.runId);
    return { writes: [lockWrite(lock, { ...lock, waiting })] };
  }
  const [nextId, ...rest] = lock.waiting;
  const next = nextId ? await readItem<RunRecord>(keys.run(nextId)) : undefined;
  const writes = [
    lockWrite(lock, { workflow: lock.workflow, key: lock.key, holder: next?.runId, waiting: rest }),
    event("LockReleased", run.runId, next ? { to: next.runId } : {}),
  ];
  if (!next) return { writes };
  writes.push(event("LockAcquired", next.runId, { from: run.runId }));
  const workflow = await getWorkflowVersion(next.workflow, next.version);
  const start = next.startOnLock ? await planStart(next, workflow, now) : undefined;
  writes.push(promotion(next, start), ...(start?.writes ?? []));
  const status = start ? "running" : "pending";
  return { writes, promoted: { run: { ...next, ...start?.fields, status }, workflow, start } };
}

/** The waiting run's own change when it gets the lock: running (with its start fields), or pending. */
function promotion(next: RunRecord, start: RunStart | undefined): TxItem {
  const fields: Record<string, unknown> = { ...start?.fields, status: start ? "running" : "pending" };
  const set = Object.keys(fields).filter((k) => fields[k] !== undefined);
  return {
    Update: {
      TableName: config.tableName(),
      Key: keys.run(next.runId),
      UpdateExpression: `SET ${set.map((k) => `#${k} = :${k}`).join(", ")} REMOVE startOnLock`,
      // closes: passing the lock to a run that is no longer waiting for it
      ConditionExpression: "#status = :waiting",
      ExpressionAttributeNames: Object.fromEntries(set.map((k) => [`#${k}`, k])),
      ExpressionAttributeValues: {
        ...Object.fromEntries(set.map((k) => [`:${k}`, fields[k]])),
        ":waiting": "waiting",
      },
    },
  };
}

/**
 * Gives back the lock of a run that ended early (cancelled, timed out) once none of its actions
 * runs any more, so that the next run of the key never overlaps its last actions (I5). Called
 * after each of its late completions; a no-op while something runs, and once the lock is gone.
 */
export async function releaseWhenIdle(run: RunRecord, now = new Date()): Promise<Promoted | undefined> {
  if (run.concurrencyKey === undefined) return undefined;
  for (let tries = 0; tries < RELEASE_RETRIES; tries++) {
    const busy = (await readTasks(run.runId)).some((t) =>
      isFanOut(t) ? t.active > 0 : t.status === "running",
    );
    if (busy) return undefined;
    const plan = await release(run, now);
    if (!plan) return undefined;
    const leaveSweep: TxItem = {
      Update: {
        TableName: config.tableName(),
        Key: keys.run(run.runId),
        UpdateExpression: "REMOVE sweepShard, sweepAt",
      },
    };
    if ((await transact([...plan.writes, leaveSweep])).ok) return plan.promoted;
    // the lock moved (a run joined its queue): read it again
  }
  throw new Error(`could not give back the concurrency-key lock of run ${run.runId}: it kept moving`);
}

const RELEASE_RETRIES = 10;
