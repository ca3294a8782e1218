/**
 * The API side of callback tasks (callback.ts has the worker side): `POST /callbacks/{token}` and
 * its heartbeat, judged from the execution's state and written through `settle` fenced on the
 * token, so of any number of identical callbacks one settles and every other answers the same
 * (200, `changed: false`); another body gets 409.
 */
import { config } from "../config";
import { contentHash } from "../definition/hash";
import { CallbackAlreadyCompletedError, CallbackNotFoundError } from "../errors";
import { completionOf, sendCompletion } from "../queue";
import { updateIf } from "../store/conditional";
import { lostRace, retryOnContention } from "../store/contention";
import { keys } from "../store/keys";
import { readItem } from "../store/run-state";
import { holdUntil } from "./callback";
import { checkCallbackBody, resultOf } from "./callback-body";
import { type CallbackKey, decodeToken, sameToken } from "./callback-token";
import { isSettled } from "./evaluate";
import { settle } from "./settle";
import type { TaskRecord } from "./task-record";

export interface CallbackAnswer {
  runId: string;
  task: string;
  item?: number;
  status: string;
  /** False when the same callback had already completed the task (a repeat changes nothing). */
  changed: boolean;
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
