import { config } from "../config";
import type { QueuedItem, TaskMessage } from "../queue";
import { historyEvent, timeOfSortId } from "../store/events";
import { keys } from "../store/keys";
import { readItem, readRun } from "../store/run-state";
import { keyOf, reasonAt, refusedAt, type TxItem, transact, type Write } from "../store/transaction";
import { claimSuspended } from "./callback";
import { isSuspended } from "./callback-token";
import { cancelClaimed, cancelIdle } from "./cancel";
import { FIRST_CLAIM, whileRunning } from "./dispatch";
import { isSettled } from "./evaluate";
import { point } from "./interleave";
import { settle } from "./settle";
import { joinWaiting, takeSlot } from "./slot";
import {
  addSeconds,
  attemptsMade,
  leaseSeconds,
  MAX_LEASE_SECONDS,
  nextLook,
  type TaskRecord,
} from "./task-record";

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

/*
 * Timeline of a claim (each arrow one conditional write; `transact` turns a write of one item into
 * a single UpdateItem):
 *
 *   first    exec queued without its record (its message       if absent -- the first claim of its
 *            carries it: an item, items.ts; a start task,       messages; ALL_OLD, if not, is judged below
 *            start.ts): put running as attempt 1, with
 *            TaskQueued (at its queueing) and TaskStarted
 *            (a limited action's is put queued instead, and claimed with its limit below)
 *   claim    exec: queued -> running, attempt := message's + 1   if queued AND attempt as the message says AND its
 *            (TaskStarted on the execution's log)                 retry is due AND no concurrency limit
 *                                                                 -- no read before it; ALL_NEW is the record
 *   then     run read: not running (cancelled, failed, ended) -> exec: running -> cancelled (that attempt),
 *            no action invoked, its completion published
 *   else     the condition failed: judged from the execution as it is (ALL_OLD), without a second read:
 *            settled, parked, waiting for a callback, not due, leased by a live worker -> nothing;
 *            a lease expired -> claimed again as the next attempt, fenced on the attempt it found;
 *            a limited action -> the claim takes its slot in a transaction with the limit (slot.ts)
 */

/**
 * The claim's guard that is not a condition expression (the read of the run after the claim), for
 * the simulation's guard-removal test only. Never changed outside tests.
 */
export const claimGuards = { runRead: true };

/** Claims attempted when a limit's slot was taken, or freed, between the read and the write. */
const SLOT_TRIES = 5;

/**
 * Claims the execution for one attempt. Claiming is a conditional transition on the attempt, so of
 * N workers holding the same message exactly one gets the attempt (I2, F3). An execution whose
 * lease expired (its worker died) is claimed again as its next attempt. An attempt claimed while
 * its run is no longer running is cancelled at once, its action never invoked.
 */
export async function claim(message: TaskMessage, workerId: string, now = new Date()): Promise<ClaimResult> {
  const { queued, ...target } = message;
  await point("claim:before-write", { ...target });
  if (queued) return claimFirst(target, queued, workerId, now);
  const seen = message.attempt ?? 0;
  // a first claim as the message expects it, with the longest lease (its own is set by the first heartbeat)
  const outcome = await claimWrite(message, workerId, now, {
    attempt: seen,
    // closes: N workers claiming the same attempt (F3, I2); a claim before the retry's time; a limited
    // action claimed without its slot (it takes the path with the limit's transaction)
    condition: QUEUED_CLAIM,
    values: { ":queued": "queued" },
    lease: addSeconds(now, MAX_LEASE_SECONDS).toISOString(),
  });
  if (outcome.ok) return started(outcome.item as unknown as TaskRecord, now);
  const found = reasonAt(outcome, keys.execution(target))?.item as TaskRecord | undefined;
  return found ? claimRecord(found, workerId, now) : { kind: "gone" };
}

/**
 * The first claim of an execution queued without its record (an item, items.ts; a start task,
 * start.ts): the record is put from the message, running as attempt 1 with the longest lease (as
 * a claim without a read), or queued for an action with a concurrency limit, whose claim takes its
 * slot (`claimLimited`).
 */
async function claimFirst(
  message: TaskMessage,
  queued: QueuedItem,
  workerId: string,
  now: Date,
): Promise<ClaimResult> {
  const { runId, task, item } = message;
  const limited = queued.execution.limit !== undefined;
  const queuedAt = timeOfSortId(queued.queuedAs);
  const record: TaskRecord = {
    ...queued.execution,
    runId,
    task,
    ...(item === undefined ? {} : { item }),
    createdAt: queuedAt,
    // its next look as its queueing set it; a claim leaves sweepAt alone (claimUpdate)
    sweepAt: nextLook(new Date(queuedAt)),
    ...(limited
      ? { status: "queued", attempt: 0 }
      : {
          status: "running",
          attempt: 1,
          startedAt: now.toISOString(),
          leaseUntil: addSeconds(now, MAX_LEASE_SECONDS).toISOString(),
          workerId,
        }),
  };
  const outcome = await transact([
    {
      Put: {
        TableName: config.tableName(),
        Item: { ...keys.execution(message), ...record },
        // closes: N workers taking the first attempt from copies of its message (F3, I2),
        // or putting its record back over one that moved on (settled, retried, cancelled)
        ConditionExpression: FIRST_CLAIM,
        ExpressionAttributeNames: { "#status": "status" },
      },
    },
    historyEvent(runId, "TaskQueued", { task, item }, queued.queuedAs),
    ...(limited ? [] : claimEvents(message, 0, workerId)),
  ]);
  if (!outcome.ok) {
    const found = reasonAt(outcome, keys.execution(message))?.item as TaskRecord | undefined;
    return found ? claimRecord(found, workerId, now) : { kind: "gone" };
  }
  return limited ? claimRecord(record, workerId, now) : started(record, now);
}

/** The condition of a claim made without a read: the execution queued at the message's attempt, due, unlimited. */
export const QUEUED_CLAIM =
  "#status = :queued AND attempt = :seen AND (attribute_not_exists(notBefore) OR notBefore <= :now) AND attribute_not_exists(#limit)";
/**
 * The condition of a limited action's claim (claimLimited), judged from the execution as read: its
 * attempt, its status (queued, or running with its lease expired) and its slot unchanged since.
 */
export const LIMITED_CLAIM = (expired: boolean, slotSeen: boolean) =>
  `attempt = :seen AND ${expired ? "#status = :running AND leaseUntil < :now" : "#status = :queued"}` +
  (slotSeen ? " AND slot = :slotSeen" : " AND attribute_not_exists(slot)");
/** The condition of a claim judged from the execution as read: its status and attempt unchanged since. */
export const CLAIM_AS_READ = {
  queued: "#status = :queued AND attempt = :seen",
  expired: "#status = :running AND attempt = :seen AND leaseUntil < :now",
};

interface ClaimWrite {
  /** The attempt the execution is expected at; the claim makes the next one. */
  attempt: number;
  condition: string;
  values: Record<string, unknown>;
  lease: string;
  /** The lease it takes over: the expired attempt is recorded as retrying. */
  expired?: TaskRecord;
}

/** The events of a claim of the attempt after `seen`: the expired one retrying, if any, and the new one started. */
function claimEvents(target: TaskMessage, seen: number, workerId: string, expired?: TaskRecord): Write[] {
  const { runId, task, item } = target;
  return [
    ...(expired
      ? [
          historyEvent(runId, "TaskRetrying", {
            task,
            item,
            attempt: seen,
            detail: { error: leaseExpired(expired) },
          }),
        ]
      : []),
    historyEvent(runId, "TaskStarted", { task, item, attempt: seen + 1, detail: { workerId } }),
  ];
}

/** The update of a claim: the execution running as the attempt after `w.attempt`, under `w.condition`. */
function claimUpdate(
  target: TaskMessage,
  workerId: string,
  now: Date,
  w: ClaimWrite,
  set = "",
): NonNullable<TxItem["Update"]> {
  return {
    TableName: config.tableName(),
    Key: keys.execution(target),
    UpdateExpression:
      "SET #status = :running, attempt = :attempt, startedAt = :now, leaseUntil = :lease, " +
      // sweepAt stays as the queueing set it: the sweeper, finding the lease alive, looks again
      // at its end (sweep.ts), so a claim costs no write to the sweeper's index
      `workerId = :worker${set} REMOVE notBefore`,
    ConditionExpression: w.condition,
    ExpressionAttributeNames: {
      "#status": "status",
      ...(w.condition.includes("#limit") ? { "#limit": "limit" } : {}),
    },
    ExpressionAttributeValues: {
      ...w.values,
      ":running": "running",
      ":attempt": w.attempt + 1,
      ":seen": w.attempt,
      ":now": now.toISOString(),
      ":lease": w.lease,
      ":worker": workerId,
    },
  };
}

/** One unlimited claim: a single conditional update, answered with the execution as written (or as found). */
function claimWrite(target: TaskMessage, workerId: string, now: Date, w: ClaimWrite) {
  return transact([
    { Update: { ...claimUpdate(target, workerId, now, w), ReturnValues: "ALL_NEW" } as TxItem["Update"] },
    ...claimEvents(target, w.attempt, workerId, w.expired),
  ]);
}

/**
 * A claim made without its run in the same write: the run is read after it. Still running, the
 * attempt is this worker's; otherwise (cancelled, failed, timed out) it is cancelled at once and
 * its completion published like any other, no action invoked. A cancel that committed after this
 * read finds the execution running under a live lease and leaves it to finish, as before.
 */
async function started(record: TaskRecord, now: Date): Promise<ClaimResult> {
  const run = await readRun(record.runId);
  if (run?.status === "running" || !claimGuards.runRead) {
    // held up past its lease before its action even started, this worker is a zombie already
    // (another may have taken the attempt over): it lets the message come back instead
    if ((record.leaseUntil ?? "") <= new Date().toISOString()) return { kind: "wait", seconds: 1 };
    return { kind: "claimed", record };
  }
  return (await cancelClaimed(record, now))
    ? { kind: "settled", record: { ...record, status: "cancelled" } }
    : { kind: "wait", seconds: 1 };
}

/** Judgings from a refused claim's ALL_OLD in one call: every one means the execution moved meanwhile. */
const JUDGINGS = 10;

async function claimRecord(
  record: TaskRecord,
  workerId: string,
  now: Date,
  tries = 0,
  judged = 0,
): Promise<ClaimResult> {
  // the execution keeps moving under this worker (or a refusal repeats itself): let the message come back
  if (judged >= JUDGINGS) return { kind: "wait", seconds: 1 };
  // an item still `pending` has no slot yet: a message for it can only be a stray duplicate
  if (record.status === "pending") return { kind: "gone" };
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
  if (record.limit) return claimLimited(record, workerId, now, tries, judged);
  const outcome = await claimWrite(record, workerId, now, {
    attempt: record.attempt,
    // closes: N workers claiming the same attempt; a claim of an expired lease racing its worker (or its retry)
    condition: record.status === "queued" ? CLAIM_AS_READ.queued : CLAIM_AS_READ.expired,
    values: record.status === "queued" ? { ":queued": "queued" } : {},
    lease: addSeconds(now, leaseSeconds(record)).toISOString(),
    expired: record.status === "running" ? record : undefined,
  });
  if (outcome.ok) return started(outcome.item as unknown as TaskRecord, now);
  // another worker won: judge from the winner's state, without a second read
  const found = reasonAt(outcome, keys.execution(record))?.item as TaskRecord | undefined;
  return found ? claimRecord(found, workerId, now, tries, judged + 1) : { kind: "gone" };
}

/**
 * The claim of an execution of a limited action: it takes a slot of the limit in the same
 * transaction (unless it holds one: handed over, or a lease taken over), with the run's status
 * checked there too.
 */
async function claimLimited(
  record: TaskRecord,
  workerId: string,
  now: Date,
  tries: number,
  judged: number,
): Promise<ClaimResult> {
  const attempt = record.attempt + 1;
  const leaseUntil = addSeconds(now, leaseSeconds(record)).toISOString();
  const expired = record.status === "running" ? record : undefined;
  const claimed = claimUpdate(
    record,
    workerId,
    now,
    {
      attempt: record.attempt,
      // closes: N workers claiming the same attempt; a claim of an expired lease racing its worker (or
      // its retry: the status as read); a claim whose slot moved since it was read
      condition: LIMITED_CLAIM(expired !== undefined, record.slot !== undefined),
      values: {
        ...(record.slot ? { ":slotSeen": record.slot } : {}),
        ...(expired ? {} : { ":queued": "queued" }),
        ":held": "held",
      },
      lease: leaseUntil,
    },
    ", slot = :held",
  );
  const slot = record.slot !== "held" ? takeSlot(record) : undefined;
  const outcome = await transact([
    whileRunning(record.runId),
    { Update: { ...claimed, ReturnValuesOnConditionCheckFailure: "ALL_OLD" } },
    ...claimEvents(record, record.attempt, workerId, expired),
    ...(slot ? [slot] : []),
  ]);
  if (outcome.ok) {
    return {
      kind: "claimed",
      record: { ...record, status: "running", attempt, leaseUntil, workerId, slot: "held" },
    };
  }
  const taskReason = reasonAt(outcome, keys.execution(record));
  if (taskReason?.code === "ConditionalCheckFailed" && taskReason.item) {
    // another worker won: judge from the winner's state, without a second read
    return claimRecord(taskReason.item as unknown as TaskRecord, workerId, now, tries, judged + 1);
  }
  if (refusedAt(outcome, keys.run(record.runId))) {
    // the run ended: the execution is cancelled, and its completion published like any other,
    // so that a with-items task counts the item down; if it moved meanwhile, look again shortly
    return (await cancelIdle(record, now))
      ? { kind: "settled", record: { ...record, status: "cancelled" } }
      : { kind: "wait", seconds: 1 };
  }
  if (slot && refusedAt(outcome, keyOf(slot)) && tries < SLOT_TRIES) {
    // every slot is taken (or others wait first): park behind them, unless one was given back meanwhile
    await point("claim:before-park", { runId: record.runId, task: record.task, item: record.item });
    if ((await transact(joinWaiting(record))).ok) return { kind: "parked" };
    const latest = await readItem<TaskRecord>(keys.execution(record));
    return latest ? claimRecord(latest, workerId, now, tries + 1, judged) : { kind: "gone" };
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
