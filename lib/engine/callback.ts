/**
 * Callback tasks (`core.callback`): the worker issues a task token and suspends the execution
 * instead of running an action; `POST /callbacks/{token}` settles it, once.
 *
 * - Worker side (`issue`): the claimed attempt is suspended in one transaction (token, deadline,
 *   a lease as long as the heartbeat window, `CallbackIssued`), then the token is POSTed to the
 *   input's `notifyUrl` (at least once), then `notifiedAt` is marked. The task message is done:
 *   the callback publishes the completion.
 * - Expiry: the lease of a waiting callback is its heartbeat window (or its deadline). When it
 *   passes, the sweeper sends the task message again and the claim (`claimSuspended`) fails the
 *   attempt with `HeartbeatTimedOut` or `CallbackTimedOut`, retryable by the task's policy.
 * - API side (`completeCallback`, `heartbeatCallback`, callback-complete.ts; the body,
 *   callback-body.ts): judged from the execution's state, written through `settle` fenced on the
 *   token, so of any number of identical callbacks one settles and every other answers the same
 *   (200, `changed: false`); another body gets 409.
 */
import { httpAction } from "../actions/http";
import { config } from "../config";
import { ActionError } from "../errors";
import { updateIf } from "../store/conditional";
import { historyEvent } from "../store/events";
import { keys } from "../store/keys";
import { readRun } from "../store/run-state";
import { transact } from "../store/transaction";
import { type CallbackKey, encodeToken } from "./callback-token";
import { cancelUnsent } from "./cancel";
import type { ClaimResult } from "./claim";
import { lookBy } from "./look";
import { ATTEMPT_FENCE, type AttemptResult, settle } from "./settle";
import { addSeconds, type ErrorInfo, idempotencyKey, type TaskRecord } from "./task-record";

/** How long the notify POST may take. */
export const NOTIFY_TIMEOUT_SECONDS = 30;

interface CallbackInput {
  notifyUrl?: string;
  headers?: Record<string, string>;
}

function parseInput(input: unknown): CallbackInput | ErrorInfo {
  const value = (input ?? {}) as Record<string, unknown>;
  if (typeof value !== "object" || Array.isArray(value)) {
    return { code: "InvalidActionInput", message: "core.callback input must be an object (or empty)" };
  }
  const { notifyUrl, headers } = value;
  if (notifyUrl !== undefined && (typeof notifyUrl !== "string" || !/^https?:\/\//.test(notifyUrl))) {
    return { code: "InvalidActionInput", message: "core.callback `notifyUrl` must be an http(s) URL" };
  }
  if (headers !== undefined && (typeof headers !== "object" || headers === null || Array.isArray(headers))) {
    return { code: "InvalidActionInput", message: "core.callback `headers` must be an object" };
  }
  return { notifyUrl, headers } as CallbackInput;
}

/** Until when a waiting callback holds: its next heartbeat, never past its deadline. */
export function holdUntil(record: TaskRecord, deadline: string, now: Date): string {
  if (record.heartbeatSeconds === undefined) return deadline;
  const beat = addSeconds(now, record.heartbeatSeconds).toISOString();
  return beat < deadline ? beat : deadline;
}

const keyOf = (record: TaskRecord): CallbackKey =>
  record.item === undefined
    ? { runId: record.runId, task: record.task, attempt: record.attempt }
    : { runId: record.runId, task: record.task, item: record.item, attempt: record.attempt };

// ---------------------------------------------------------------------------------------------
// Worker side

/**
 * Runs a claimed `core.callback` attempt: suspends it with a new token and notifies. Returns the
 * attempt's result when it failed before waiting (bad input, the notify POST failed: settle it as
 * usual), or undefined when nothing is left for the worker (the execution waits for its callback,
 * or the attempt is no longer this worker's).
 */
export async function issue(record: TaskRecord, now = new Date()): Promise<AttemptResult | undefined> {
  if (record.inputError) return { ok: false, error: record.inputError, retryable: false };
  const input = parseInput(record.input);
  if ("code" in input) return { ok: false, error: input, retryable: false };
  const token = encodeToken(keyOf(record));
  const deadline = addSeconds(now, record.timeoutSeconds).toISOString();
  const until = holdUntil(record, deadline, now);
  const suspended = await transact([
    {
      Update: {
        TableName: config.tableName(),
        Key: keys.execution(record),
        UpdateExpression:
          "SET callbackToken = :token, callbackDeadline = :deadline, leaseUntil = :until, sweepAt = :until " +
          "REMOVE notifiedAt, callbackBodyHash",
        // closes: a zombie worker (its lease taken over by a newer attempt) suspending that attempt with its token
        ConditionExpression: ATTEMPT_FENCE,
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":token": token,
          ":deadline": deadline,
          ":until": until,
          ":running": "running",
          ":attempt": record.attempt,
        },
      },
    },
    historyEvent(record.runId, "CallbackIssued", {
      task: record.task,
      item: record.item,
      attempt: record.attempt,
      detail: { token },
    }),
  ]);
  if (!suspended.ok) return undefined;
  // it is in no index: a heartbeat window (or timeout) shorter than the periodic look needs a look by its end
  await lookBy(record, until, now);
  const waiting: TaskRecord = {
    ...record,
    callbackToken: token,
    callbackDeadline: deadline,
    leaseUntil: until,
  };
  // a cancel that looked at the run's tasks before the suspension saw a live worker and left this
  // execution alone: whoever looks second (the cancel at the tasks, or this at the run) cancels it
  const run = await readRun(record.runId);
  if (run?.status !== "running") {
    await cancelUnsent(waiting, now);
    return undefined;
  }
  return notify(waiting, input);
}

/**
 * A task message found the execution waiting for its callback (a duplicate or a redelivery): the
 * notify is repeated if it is not known to have been made (same token), otherwise nothing.
 */
export async function renotify(record: TaskRecord): Promise<AttemptResult | undefined> {
  if (record.notifiedAt !== undefined) return undefined;
  const input = parseInput(record.input);
  return "code" in input ? undefined : notify(record, input);
}

async function notify(record: TaskRecord, input: CallbackInput): Promise<AttemptResult | undefined> {
  const token = record.callbackToken as string;
  if (input.notifyUrl === undefined) return undefined;
  const { runId, task, item, attempt } = record;
  try {
    // the same request as core.http: Idempotency-Key, X-Onceflow-Attempt and the input's headers
    await httpAction(
      {
        url: input.notifyUrl,
        method: "POST",
        headers: input.headers,
        body: { token, runId, task, item },
        timeoutSeconds: NOTIFY_TIMEOUT_SECONDS,
      },
      {
        runId,
        task,
        item,
        attempt,
        idempotencyKey: idempotencyKey(runId, task, item),
        signal: new AbortController().signal,
      },
    );
  } catch (error) {
    const cause = error instanceof ActionError ? error : undefined;
    const message = cause?.message ?? String(error);
    return {
      ok: false,
      error: { code: cause?.code ?? "CallbackNotifyFailed", message: `notify: ${message}` },
      retryable: cause?.retryable ?? true,
    };
  }
  await markNotified(record, token);
  return undefined;
}

async function markNotified(record: TaskRecord, token: string): Promise<void> {
  // not written: the callback came (or the wait expired) before the mark, nothing left to mark
  await updateIf({
    TableName: config.tableName(),
    Key: keys.execution(record),
    UpdateExpression: "SET notifiedAt = :now",
    // closes: marking a newer attempt (new token) notified, or an execution settled meanwhile
    ConditionExpression: "#status = :running AND attempt = :attempt AND callbackToken = :token",
    ExpressionAttributeNames: { "#status": "status" },
    ExpressionAttributeValues: {
      ":now": new Date().toISOString(),
      ":running": "running",
      ":attempt": record.attempt,
      ":token": token,
    },
  });
}

/**
 * The claim found a callback waiting: nothing runs while its lease (heartbeat window, or
 * deadline) holds; past it, the attempt fails with `HeartbeatTimedOut` or `CallbackTimedOut`,
 * retryable by the task's policy (a retry issues a new token).
 */
export async function claimSuspended(record: TaskRecord, now: Date): Promise<ClaimResult> {
  if ((record.leaseUntil ?? "") > now.toISOString()) return { kind: "suspended", record };
  const timedOut = (record.callbackDeadline ?? "") <= now.toISOString();
  const error: ErrorInfo = timedOut
    ? { code: "CallbackTimedOut", message: `no callback by ${record.callbackDeadline}` }
    : {
        code: "HeartbeatTimedOut",
        message: `no callback or heartbeat by ${record.leaseUntil} (heartbeatSeconds ${record.heartbeatSeconds})`,
      };
  const settled = await settle(record, { ok: false, error, retryable: true }, now);
  if (settled.kind === "retry") return { kind: "wait", seconds: settled.seconds };
  if (settled.kind === "lost") return { kind: "wait", seconds: 1 };
  return { kind: "settled", record: { ...record, status: "failed" } };
}
