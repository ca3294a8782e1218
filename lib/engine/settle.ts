import { config } from "../config";
import { historyEvent } from "../store/events";
import { keys } from "../store/keys";
import { point } from "./interleave";
import { transactGivingBack } from "./slot";
import {
  addSeconds,
  attemptsMade,
  type ErrorInfo,
  QUEUED_SWEEP_SECONDS,
  retryDelaySeconds,
  type TaskRecord,
} from "./task-record";

/** The guard of an attempt's result: the execution still running as that attempt (I8). */
export const ATTEMPT_FENCE = "#status = :running AND attempt = :attempt";

export type AttemptResult =
  | { ok: true; output: unknown }
  | { ok: false; error: ErrorInfo; retryable: boolean };

export type SettleOutcome =
  | { kind: "succeeded" | "failed" }
  /** Back to queued: the next attempt may be claimed after `seconds`. */
  | { kind: "retry"; seconds: number }
  /** The attempt is no longer current (its lease expired and another attempt took over): nothing written. */
  | { kind: "lost" };

/** A callback settling a waiting `core.callback` execution (callback.ts). */
export interface CallbackSettle {
  /** The token the callback came with: it must still be the execution's current one. */
  token: string;
  /** sha256 of the callback's canonical body, kept so that a repeat can be told from a conflict. */
  bodyHash: string;
}

/**
 * Records the result of the attempt `record.attempt`: the exactly-once terminal transition of an
 * execution (or its return to the queue for a retry). Fenced on the attempt, so a zombie worker
 * whose lease was taken over cannot overwrite the newer attempt (I8).
 */
export async function settle(
  record: TaskRecord,
  result: AttemptResult,
  now = new Date(),
  callback?: CallbackSettle,
): Promise<SettleOutcome> {
  const { runId, task, item, attempt } = record;
  const retry = !result.ok && result.retryable && attemptsMade(record) < record.retry.maxAttempts;
  const names: Record<string, string> = { "#status": "status" };
  const values: Record<string, unknown> = {
    ":running": "running",
    ":attempt": attempt,
    ":now": now.toISOString(),
  };
  let update: string;
  let outcome: SettleOutcome;
  if (result.ok) {
    update =
      "SET #status = :succeeded, #output = :output, endedAt = :now REMOVE leaseUntil, sweepShard, sweepAt";
    names["#output"] = "output";
    Object.assign(values, { ":succeeded": "succeeded", ":output": result.output ?? null });
    outcome = { kind: "succeeded" };
  } else if (retry) {
    const seconds = retryDelaySeconds(record.retry, attemptsMade(record));
    const notBefore = addSeconds(now, seconds).toISOString();
    // the message itself waits for the retry; the sweeper only steps in if it got lost
    const sweepAt = addSeconds(now, seconds + QUEUED_SWEEP_SECONDS).toISOString();
    update =
      "SET #status = :queued, #error = :error, notBefore = :notBefore, sweepAt = :sweepAt, retriedAt = :now REMOVE leaseUntil";
    names["#error"] = "error";
    Object.assign(values, {
      ":queued": "queued",
      ":error": result.error,
      ":notBefore": notBefore,
      ":sweepAt": sweepAt,
    });
    outcome = { kind: "retry", seconds };
  } else {
    update = "SET #status = :failed, #error = :error, endedAt = :now REMOVE leaseUntil, sweepShard, sweepAt";
    names["#error"] = "error";
    Object.assign(values, { ":failed": "failed", ":error": result.error });
    outcome = { kind: "failed" };
  }
  let condition = ATTEMPT_FENCE;
  if (callback) {
    update = update.replace(/^SET /, "SET callbackBodyHash = :bodyHash, ");
    // closes: a callback racing its own expiry (timeout, missed heartbeat), or carrying an older attempt's token
    condition += " AND callbackToken = :token AND leaseUntil > :now";
    Object.assign(values, { ":token": callback.token, ":bodyHash": callback.bodyHash });
  }
  const type = result.ok ? "TaskSucceeded" : retry ? "TaskRetrying" : "TaskFailed";
  // a slot of the action's concurrency limit is given back in this same transition, so exactly once
  if (record.slot === "held") update += ", slot"; // every update above ends with a REMOVE clause
  await point("settle:before-write", { runId, task, item, attempt });
  const written = await transactGivingBack(
    record,
    [
      {
        Update: {
          TableName: config.tableName(),
          Key: keys.execution(record),
          UpdateExpression: update,
          // closes: a zombie attempt (or a duplicate of this one) writing over the current attempt (I8)
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        },
      },
      ...(callback
        ? [historyEvent(runId, "CallbackReceived", { task, item, attempt, detail: { ok: result.ok } })]
        : []),
      historyEvent(runId, type, {
        task,
        item,
        attempt,
        detail: result.ok ? undefined : { error: result.error },
      }),
    ],
    now,
  );
  // not written: the execution moved on (a zombie's attempt, I8)
  return written.ok ? outcome : { kind: "lost" };
}
