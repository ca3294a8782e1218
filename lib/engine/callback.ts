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
 * - API side (`completeCallback`, `heartbeatCallback`): judged from the execution's state, written
 *   through `settle` fenced on the token, so of any number of identical callbacks one settles and
 *   every other answers the same (200, `changed: false`); another body gets 409.
 */
import { httpAction } from "../actions/http";
import { config } from "../config";
import { contentHash } from "../definition/hash";
import {
  ActionError,
  CallbackAlreadyCompletedError,
  CallbackNotFoundError,
  InvalidRequestError,
  type Problem,
} from "../errors";
import { completionOf, sendCompletion } from "../queue";
import { updateIf } from "../store/conditional";
import { lostRace, retryOnContention } from "../store/contention";
import { historyEvent } from "../store/events";
import { keys } from "../store/keys";
import { readItem, readRun } from "../store/run-state";
import { transact } from "../store/transaction";
import { MAX_OUTPUT_BYTES } from "./attempt";
import { type CallbackKey, decodeToken, encodeToken, sameToken } from "./callback-token";
import { cancelUnsent } from "./cancel";
import type { ClaimResult } from "./claim";
import { isSettled } from "./evaluate";
import { lookBy } from "./look";
import { type AttemptResult, settle } from "./settle";
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
function holdUntil(record: TaskRecord, deadline: string, now: Date): string {
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
        ConditionExpression: "#status = :running AND attempt = :attempt",
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

// ---------------------------------------------------------------------------------------------
// API side

export type CallbackBody = { output: unknown } | { error: { code?: string; message: string } };

export interface CallbackAnswer {
  runId: string;
  task: string;
  item?: number;
  status: string;
  /** False when the same callback had already completed the task (a repeat changes nothing). */
  changed: boolean;
}

const ERROR_CODE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const MAX_ERROR_MESSAGE = 4096;

/** Checks a callback body: exactly one of `{output}` or `{error: {code?, message}}`. */
export function checkCallbackBody(body: unknown): CallbackBody {
  const fail = (problems: Problem[]) => {
    throw new InvalidRequestError("invalid callback body", problems);
  };
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return fail([{ path: "", message: "must be a JSON object with `output` or `error`" }]);
  }
  const record = body as Record<string, unknown>;
  const problems: Problem[] = Object.keys(record)
    .filter((k) => k !== "output" && k !== "error")
    .map((k) => ({ path: k, message: "unknown field (expected `output` or `error`)" }));
  const hasOutput = "output" in record;
  const hasError = "error" in record;
  if (hasOutput === hasError) {
    problems.push({ path: "", message: "must have exactly one of `output` and `error`" });
  }
  if (hasOutput) {
    const size = Buffer.byteLength(JSON.stringify(record.output ?? null));
    if (size > MAX_OUTPUT_BYTES) {
      problems.push({ path: "output", message: `is ${size} bytes, over the limit of ${MAX_OUTPUT_BYTES}` });
    }
  }
  if (hasError) {
    const error = record.error as Record<string, unknown> | null;
    if (error === null || typeof error !== "object" || Array.isArray(error)) {
      problems.push({ path: "error", message: "must be an object `{code?, message}`" });
    } else {
      for (const k of Object.keys(error).filter((k) => k !== "code" && k !== "message")) {
        problems.push({ path: `error.${k}`, message: "unknown field (expected `code` and `message`)" });
      }
      if (typeof error.message !== "string" || error.message === "") {
        problems.push({ path: "error.message", message: "must be a non-empty string" });
      } else if (error.message.length > MAX_ERROR_MESSAGE) {
        problems.push({ path: "error.message", message: `must be at most ${MAX_ERROR_MESSAGE} characters` });
      }
      if (error.code !== undefined && (typeof error.code !== "string" || !ERROR_CODE.test(error.code))) {
        problems.push({ path: "error.code", message: `must be a string matching ${ERROR_CODE.source}` });
      }
    }
  }
  if (problems.length > 0) return fail(problems);
  return hasOutput
    ? { output: record.output ?? null }
    : { error: withoutUndefined(record.error as { code?: string; message: string }) };
}

const withoutUndefined = <T extends object>(value: T): T =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;

/** A callback's `{error}` fails the task without retry: the caller decided. */
function resultOf(body: CallbackBody): AttemptResult {
  if ("output" in body) return { ok: true, output: body.output };
  return {
    ok: false,
    error: { code: body.error.code ?? "CallbackFailed", message: body.error.message },
    retryable: false,
  };
}

type Judgement = { kind: "waiting"; record: TaskRecord } | { kind: "completed"; record: TaskRecord };

const NOT_WAITING = "no callback is waiting for this token (unknown, or expired: the task was retried)";

/**
 * What the execution's state says of a token: it is waiting for it, or it was completed by a
 * callback with it (`callbackBodyHash` set); anything else is 404 (unknown, or expired).
 */
function judge(record: TaskRecord | undefined, key: CallbackKey, token: string, now: Date): Judgement {
  if (!record || record.attempt !== key.attempt || !sameToken(record.callbackToken, token)) {
    throw new CallbackNotFoundError(NOT_WAITING);
  }
  if (record.status === "running") {
    if ((record.leaseUntil ?? "") <= now.toISOString()) {
      const timedOut = (record.callbackDeadline ?? "") <= now.toISOString();
      throw new CallbackNotFoundError(
        `the callback token expired at ${record.leaseUntil} (${timedOut ? "timeoutSeconds reached" : "no heartbeat in time"})`,
      );
    }
    return { kind: "waiting", record };
  }
  if (isSettled(record.status) && record.callbackBodyHash !== undefined) return { kind: "completed", record };
  throw new CallbackNotFoundError(
    `the callback token expired: the task is ${record.status} without it (timed out, or cancelled)`,
  );
}

const answer = (record: TaskRecord, status: string, changed: boolean): CallbackAnswer => ({
  runId: record.runId,
  task: record.task,
  ...(record.item !== undefined ? { item: record.item } : {}),
  status,
  changed,
});

function decode(token: string): CallbackKey {
  const key = decodeToken(token);
  if (!key) throw new CallbackNotFoundError(NOT_WAITING);
  return key;
}

/**
 * `POST /callbacks/{token}`: completes the waiting task once. The same body again answers 200
 * with `changed: false` (and publishes the completion again, which SQS dedups: this heals a first
 * call that died after its write); another body answers 409. A write that loses a race (another
 * callback, the expiry, a cancel) is judged again from the state the winner left.
 */
export async function completeCallback(
  token: string,
  body: unknown,
  now = new Date(),
): Promise<CallbackAnswer> {
  const parsed = checkCallbackBody(body);
  const key = decode(token);
  const bodyHash = contentHash(parsed);
  // the execution changing under every try throws (ContentionError): 503, and the caller's retry
  // is judged like any repeated callback (the same body again answers 200)
  return retryOnContention(`complete the callback of ${key.runId}/${key.task}`, async () => {
    const judged = judge(await readItem<TaskRecord>(keys.execution(key)), key, token, now);
    const { record } = judged;
    if (judged.kind === "completed") {
      if (record.callbackBodyHash !== bodyHash) {
        throw new CallbackAlreadyCompletedError(
          `the task was already completed (${record.status}) by a callback with another body`,
          { runId: record.runId, task: record.task, item: record.item, status: record.status },
        );
      }
      await sendCompletion(completionOf(record, record.status as "succeeded" | "failed"));
      return answer(record, record.status, false);
    }
    const outcome = await settle(record, resultOf(parsed), now, { token, bodyHash });
    if (outcome.kind === "succeeded" || outcome.kind === "failed") {
      await sendCompletion(completionOf(record, outcome.kind));
      return answer(record, outcome.kind, true);
    }
    // lost: another callback, the expiry or a cancel got there first; judge from what it left
    return lostRace(outcome);
  });
}

/**
 * `POST /callbacks/{token}/heartbeat`: the waiting callback holds for another `heartbeatSeconds`
 * (never past its deadline). 409 once it was completed; 404 when unknown or expired.
 */
export async function heartbeatCallback(
  token: string,
  now = new Date(),
): Promise<{ heartbeatUntil: string }> {
  const key = decode(token);
  // the execution changing under every try throws (ContentionError): 503, and the heartbeat is
  // simply sent again
  return retryOnContention(`heartbeat the callback of ${key.runId}/${key.task}`, async () => {
    const judged = judge(await readItem<TaskRecord>(keys.execution(key)), key, token, now);
    const { record } = judged;
    if (judged.kind === "completed") {
      throw new CallbackAlreadyCompletedError(`the task was already completed (${record.status})`, {
        runId: record.runId,
        task: record.task,
        item: record.item,
        status: record.status,
      });
    }
    const until = holdUntil(record, record.callbackDeadline as string, now);
    const beat = await updateIf({
      TableName: config.tableName(),
      Key: keys.execution(record),
      UpdateExpression: "SET leaseUntil = :until, sweepAt = :until",
      // closes: a heartbeat reviving a callback that expired (its timeout being settled), or was settled or cancelled meanwhile
      ConditionExpression:
        "#status = :running AND attempt = :attempt AND callbackToken = :token AND leaseUntil > :now",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: {
        ":until": until,
        ":running": "running",
        ":attempt": record.attempt,
        ":token": token,
        ":now": now.toISOString(),
      },
    });
    if (beat) return { heartbeatUntil: until };
    // settled, cancelled or expired meanwhile: judge again
    return lostRace();
  });
}
