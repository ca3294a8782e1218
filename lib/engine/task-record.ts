import type { RetryPolicy } from "../definition/types";
import type { TaskStatus } from "./evaluate";
import type { SlotLimit } from "./slot";

export interface ErrorInfo {
  code: string;
  message: string;
}

/**
 * `pending`: an item put with its with-items task, waiting for a concurrency slot (tasks started
 * before items were chunked: an item is now put only when it is queued, items.ts).
 */
export type ExecutionStatus = TaskStatus | "pending";

/**
 * One execution as stored under `RUN#{runId} / TASK#{task}` (a plain task) or
 * `ITEM#{task}#{index}` (one item of a with-items task). It carries what the worker needs (action,
 * evaluated input, timeout, retry policy), so a worker never reads the definition.
 */
export interface TaskRecord {
  runId: string;
  task: string;
  /** The with-items index; undefined for a plain task. */
  item?: number;
  status: ExecutionStatus;
  /** The current (or last) attempt; 0 until the first claim. Attempt numbers go on across a redrive. */
  attempt: number;
  /** Attempts made before the run's last redrive: the retry policy counts from here. */
  attemptBase?: number;
  action: string;
  input?: unknown;
  /** Set when the input template failed to evaluate: the first attempt fails with it. */
  inputError?: ErrorInfo;
  timeoutSeconds: number;
  /** `core.callback` only: a waiting callback times out unless heartbeated this often. */
  heartbeatSeconds?: number;
  retry: RetryPolicy;
  output?: unknown;
  error?: ErrorInfo;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  /** While running: the lease of the current attempt. */
  leaseUntil?: string;
  workerId?: string;
  /** While waiting to retry: not claimable before this time. */
  notBefore?: string;
  /** Sparse index for the sweeper: set while the execution still needs something to happen. */
  sweepShard?: string;
  sweepAt?: string;
  /** Items: the run's redrive that last queued the item again (its completions belong to it, counted.ts). */
  redriven?: number;
  /** The concurrency limit of its action, if the workflow has one (slot.ts). */
  limit?: SlotLimit;
  /** `held`: it holds one of the limit's slots (running, or handed one while queued); `waiting`: parked for one. */
  slot?: "held" | "waiting";
  /** `core.callback` (callback.ts): the current attempt's task token, while and after it waits. */
  callbackToken?: string;
  /** When the waiting attempt times out (`CallbackTimedOut`), from the task's `timeoutSeconds`. */
  callbackDeadline?: string;
  /** Set once the token was POSTed to the input's `notifyUrl`. */
  notifiedAt?: string;
  /** sha256 of the callback body that settled the execution: a repeat must match it. */
  callbackBodyHash?: string;
}

/**
 * The parent record of a with-items task (`TASK#{task}`): no action of its own, only the fan-out
 * counters. `nextIndex` items have been dispatched; `active` of them are not counted down yet.
 * Every change is conditional on `version`.
 */
export interface FanOutRecord {
  runId: string;
  task: string;
  status: TaskStatus;
  fanOut: true;
  total: number;
  nextIndex: number;
  active: number;
  succeededItems: number;
  failedItems: number;
  /** Items cancelled before they ran (their run was cancelled or timed out). */
  cancelledItems?: number;
  concurrency: number;
  /** More failed items than this fail the task (from `toleratedFailurePercentage`). */
  maxFailures: number;
  version: number;
  /** Items counted down (counted.ts): every index below `countedBelow`, and those in `countedAbove`. */
  countedBelow?: number;
  countedAbove?: number[];
  /** Items a redrive put back, by index: that redrive (a completion counts only if it belongs to it). */
  putBack?: Record<string, number>;
  /** Items a redrive put back (they failed or were cancelled), queued before the fresh ones. */
  redo?: number[];
  /** The run's redrive that put them back (a new SQS dedup generation for their messages). */
  redriveCount?: number;
  /** Items a chunk of their inputs holds (items.ts); absent for a task started before items were chunked. */
  chunk?: number;
  /** The sort id of the last fill's last TaskQueued: every fresh item below `nextIndex` was queued by then (items.ts). */
  filledAt?: string;
  /** Set when the items could not be evaluated. */
  error?: ErrorInfo;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  sweepShard?: string;
  sweepAt?: string;
}

export type TaskItem = TaskRecord | FanOutRecord;

export const isFanOut = (record: TaskItem): record is FanOutRecord =>
  "fanOut" in record && record.fanOut === true;

export const DEFAULT_TIMEOUT_SECONDS = 60;
/** Without a `retry` block, retryable failures (timeouts, 429, 5xx, network) are retried this way. */
export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 3, intervalSeconds: 1, backoffRate: 2 };
/** How long past the action's timeout a lease lasts, for the worker to record the result. */
export const LEASE_MARGIN_SECONDS = 10;
/**
 * A lease never runs longer than this without a heartbeat, so a dead worker is noticed soon: a
 * lease is at most 20 s (a beat every third of it), what a worker that died after its claim costs.
 */
const MAX_UNRENEWED_SECONDS = 10;

/**
 * The longest lease: that of a claim made before the execution was read (its `timeoutSeconds`
 * unknown), until the first heartbeat sets the execution's own.
 */
export const MAX_LEASE_SECONDS = MAX_UNRENEWED_SECONDS + LEASE_MARGIN_SECONDS;

/**
 * How long one claim (or heartbeat) holds an execution: short, and renewed while the action runs
 * (lease.ts), so that a worker that died is replaced after seconds, not after the whole timeout.
 */
export function leaseSeconds(record: Pick<TaskRecord, "timeoutSeconds">): number {
  return Math.min(record.timeoutSeconds, MAX_UNRENEWED_SECONDS) + LEASE_MARGIN_SECONDS;
}
/**
 * Queued executions are looked at by the sweeper this long after they were queued (a send lost to
 * a crash is repeated then), and a running run this often. Shorter costs more duplicate sends of
 * messages that were only slow to be claimed (a backlog), and more looks at long runs.
 */
export const QUEUED_SWEEP_SECONDS = 20;

export const SWEEP_SHARDS = 4;

export function sweepShard(runId: string): string {
  let hash = 0;
  for (const char of runId) hash = (hash * 31 + char.charCodeAt(0)) | 0;
  return String(Math.abs(hash) % SWEEP_SHARDS);
}

/**
 * The values `:shard` and `:sweepAt` of an update that puts a run or a with-items task in the
 * sweeper's index, to be looked at in QUEUED_SWEEP_SECONDS (`SET sweepShard = :shard, sweepAt =
 * :sweepAt`). Executions are in no index: each has its `sweepAt` (`nextLook`), and the look at its
 * run (a plain task) or its with-items task (an item) acts on it (look.ts); an index entry would
 * cost two write units an execution.
 */
export function sweepValues(runId: string, now: Date): { ":shard": string; ":sweepAt": string } {
  return { ":shard": sweepShard(runId), ":sweepAt": nextLook(now) };
}

/** When an execution queued (or handed a slot) now needs a look, unless something happened to it by then. */
export const nextLook = (now: Date) => addSeconds(now, QUEUED_SWEEP_SECONDS).toISOString();

export function idempotencyKey(runId: string, task: string, item?: number): string {
  return `${runId}/${task}/${item ?? "-"}`;
}

/**
 * Delay before the retry that follows attempt `attempt`: `intervalSeconds × backoffRate^(attempt-1)`,
 * capped by `maxIntervalSeconds`, plus up to 20% jitter (never below the interval, never above the cap).
 */
export function retryDelaySeconds(retry: RetryPolicy, attempt: number): number {
  const cap = retry.maxIntervalSeconds ?? Number.POSITIVE_INFINITY;
  const base = Math.min(retry.intervalSeconds * retry.backoffRate ** (attempt - 1), cap);
  return Math.min(base * (1 + Math.random() * 0.2), cap);
}

/** Attempts made since the run's last redrive (what the retry policy counts). */
export const attemptsMade = (record: Pick<TaskRecord, "attempt" | "attemptBase">) =>
  record.attempt - (record.attemptBase ?? 0);

export const addSeconds = (date: Date, seconds: number) => new Date(date.getTime() + seconds * 1000);
