import { config } from "../config";
import type { TaskMessage } from "../queue";
import { historyEvent } from "../store/events";
import { keys } from "../store/keys";
import { readItem } from "../store/run-state";
import { transact, type Write } from "../store/transaction";
import { claimSuspended } from "./callback";
import { isSuspended } from "./callback-token";
import { cancelIdle } from "./cancel";
import { whileRunning } from "./dispatch";
import { isSettled } from "./evaluate";
import { point } from "./interleave";
import { settle } from "./settle";
import { joinWaiting, takeSlot } from "./slot";
import { addSeconds, attemptsMade, leaseSeconds, type TaskRecord } from "./task-record";

export type ClaimResult =
  /** This worker holds the lease of `record.attempt` and should run the action. */
  | { kind: "claimed"; record: TaskRecord }
  /** Not claimable yet (waiting to retry, or another worker's lease is live): look again later. */
  | { kind: "wait"; seconds: number }
  /** Already settled: the completion may need publishing again, nothing may run. */
  | { kind: "settled"; record: TaskRecord }
  /** Nothing to do: no such execution, or it was cancelled with its run. */
  | { kind: "gone" }
  /** Parked for a slot of its action's concurrency limit: the hand-over of a slot sends a new message. */
  | { kind: "parked" }
  /** A callback task waiting for its token (callback.ts): nothing runs; the notify may need repeating. */
  | { kind: "suspended"; record: TaskRecord };

const secondsUntil = (iso: string | undefined, now: Date) =>
  iso ? Math.max(0, (Date.parse(iso) - now.getTime()) / 1000) : 0;

/**
 * Claims the execution for one attempt. Claiming is a conditional transition on the attempt the
 * worker saw, so of N workers holding the same message exactly one gets the attempt (I2, F3).
 * An execution whose lease expired (its worker died) is claimed again as its next attempt.
 */
export async function claim(message: TaskMessage, workerId: string, now = new Date()): Promise<ClaimResult> {
  const record = await readItem<TaskRecord>(keys.execution(message));
  await point("claim:after-read", { ...message });
  // an item still `pending` has no slot yet: a message for it can only be a stray duplicate
  return record && record.status !== "pending" ? claimRecord(record, workerId, now) : { kind: "gone" };
}

/** Claims attempted when a limit's slot was taken, or freed, between the read and the write. */
const SLOT_TRIES = 5;

async function claimRecord(record: TaskRecord, workerId: string, now: Date, tries = 0): Promise<ClaimResult> {
  if (isSettled(record.status)) return { kind: "settled", record };
  if (record.slot === "waiting") return { kind: "parked" };
  if (isSuspended(record)) return claimSuspended(record, now);
  if (record.status === "queued" && secondsUntil(record.notBefore, now) > 0) {
    return { kind: "wait", seconds: secondsUntil(record.notBefore, now) };
  }
  if (record.status === "running" && secondsUntil(record.leaseUntil, now) > 0) {
    return { kind: "wait", seconds: secondsUntil(record.leaseUntil, now) };
  }
  if (record.status === "running" && attemptsMade(record) >= record.retry.maxAttempts) {
    // the last attempt's worker died: the execution fails, fenced on that attempt
    const settled = await settle(record, { ok: false, error: leaseExpired(record), retryable: false }, now);
    return settled.kind === "lost"
      ? { kind: "wait", seconds: 1 }
      : { kind: "settled", record: { ...record, status: "failed" } };
  }

  const attempt = record.attempt + 1;
  const leaseUntil = addSeconds(now, leaseSeconds(record)).toISOString();
  const events: Write[] = [];
  if (record.status === "running") {
    events.push(
      historyEvent(record.runId, "TaskRetrying", {
        task: record.task,
        item: record.item,
        attempt: record.attempt,
        detail: { error: leaseExpired(record) },
      }),
    );
  }
  events.push(
    historyEvent(record.runId, "TaskStarted", {
      task: record.task,
      item: record.item,
      attempt,
      detail: { workerId },
    }),
  );
  // a limited action takes a slot with the claim, unless it holds one (handed over, or a lease taken over)
  const slot = record.limit && record.slot !== "held" ? takeSlot(record) : undefined;
  const outcome = await transact([
    whileRunning(record.runId),
    {
      Update: {
        TableName: config.tableName(),
        Key: keys.execution(record),
        UpdateExpression:
          "SET #status = :running, attempt = :attempt, startedAt = :now, leaseUntil = :lease, " +
          `workerId = :worker, sweepAt = :lease${record.limit ? ", slot = :held" : ""} REMOVE notBefore`,
        // closes: N workers claiming the same attempt; a claim of an expired lease racing its worker (or
        // its retry: the status as read); for a limited action, a claim whose slot moved since it was read
        ConditionExpression:
          `attempt = :seen AND ${record.status === "queued" ? "#status = :queued" : "#status = :running AND leaseUntil < :now"}` +
          (record.limit ? (record.slot ? " AND slot = :slotSeen" : " AND attribute_not_exists(slot)") : ""),
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ...(record.limit && record.slot ? { ":slotSeen": record.slot } : {}),
          ":running": "running",
          ...(record.status === "queued" ? { ":queued": "queued" } : {}),
          ":attempt": attempt,
          ":seen": record.attempt,
          ":now": now.toISOString(),
          ":lease": leaseUntil,
          ":worker": workerId,
          ...(record.limit ? { ":held": "held" } : {}),
        },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    },
    ...events,
    ...(slot ? [slot] : []),
  ]);
  if (outcome.ok) {
    const claimed: TaskRecord = { ...record, status: "running", attempt, leaseUntil, workerId };
    if (record.limit) claimed.slot = "held";
    return { kind: "claimed", record: claimed };
  }
  const [runReason, taskReason] = outcome.reasons;
  const slotReason = outcome.reasons[2];
  if (taskReason?.code === "ConditionalCheckFailed" && taskReason.item) {
    // another worker won: judge from the winner's state, without a second read
    return claimRecord(taskReason.item as unknown as TaskRecord, workerId, now);
  }
  if (runReason?.code === "ConditionalCheckFailed") {
    // the run ended: the execution is cancelled, and its completion published like any other,
    // so that a with-items task counts the item down; if it moved meanwhile, look again shortly
    return (await cancelIdle(record, now))
      ? { kind: "settled", record: { ...record, status: "cancelled" } }
      : { kind: "wait", seconds: 1 };
  }
  if (slotReason?.code === "ConditionalCheckFailed" && tries < SLOT_TRIES) {
    // every slot is taken (or others wait first): park behind them, unless one was given back meanwhile
    if ((await transact(joinWaiting(record))).ok) return { kind: "parked" };
    const latest = await readItem<TaskRecord>(keys.execution(record));
    return latest ? claimRecord(latest, workerId, now, tries + 1) : { kind: "gone" };
  }
  // only transaction conflicts left: let the message come back shortly
  return { kind: "wait", seconds: 1 };
}

function leaseExpired(record: TaskRecord) {
  return {
    code: "LeaseExpired",
    message: `attempt ${record.attempt} lost its worker (lease expired at ${record.leaseUntil})`,
  };
}
