import { type Action, getAction } from "../actions/registry";
import { ActionError } from "../errors";
import { keepLease, type OnRenew } from "./lease";
import type { AttemptResult } from "./settle";
import { idempotencyKey, type TaskRecord } from "./task-record";

/** Outputs are stored on the execution's DynamoDB item, which must stay under 400 KB. */
export const MAX_OUTPUT_BYTES = 280 * 1024;

/**
 * Runs one attempt of an execution's action, bounded by its `timeoutSeconds` (the action's signal
 * is aborted and the attempt fails with the retryable `TaskTimedOut`), then `write`s its result;
 * its lease is kept alive from the start until the write is done. A write can be slow (a limit's
 * give-back retrying on a busy limit item): were the lease to lapse meanwhile, the attempt would
 * be taken over (`LeaseExpired`) and its action invoked again although its result was in hand.
 * Never throws, but for what `write` throws.
 */
export async function runAttempt<T = AttemptResult>(
  record: TaskRecord,
  onRenew?: OnRenew,
  write: (result: AttemptResult) => Promise<T> | T = (result) => result as T,
): Promise<T> {
  if (record.inputError) return write({ ok: false, error: record.inputError, retryable: false });
  const action = getAction(record.action);
  if (!action) {
    const error = {
      code: "UnknownAction",
      message: `action '${record.action}' is not registered in this worker`,
    };
    return write({ ok: false, error, retryable: false });
  }
  const controller = new AbortController();
  const timer = setTimeout(() => {
    const message = `attempt timed out after ${record.timeoutSeconds} s`;
    controller.abort(new ActionError("TaskTimedOut", message, { retryable: true }));
  }, record.timeoutSeconds * 1000);
  const stopHeartbeat = keepLease(record, controller, onRenew);
  try {
    const result = await invoke(action, record, controller);
    clearTimeout(timer);
    return await write(result);
  } finally {
    clearTimeout(timer);
    stopHeartbeat();
  }
}

/** The action's run: its output, or its error as a result; ended early when `controller` aborts. */
async function invoke(
  action: Action,
  record: TaskRecord,
  controller: AbortController,
): Promise<AttemptResult> {
  // the attempt ends when the action does, or when it is aborted: timed out, or its lease lost
  const aborted = new Promise<never>((_, reject) =>
    controller.signal.addEventListener("abort", () => reject(controller.signal.reason)),
  );
  aborted.catch(() => {}); // a late abort, after the attempt ended, is nobody's concern
  try {
    const context = {
      runId: record.runId,
      task: record.task,
      item: record.item,
      attempt: record.attempt,
      idempotencyKey: idempotencyKey(record.runId, record.task, record.item),
      signal: controller.signal,
    };
    const output =
      (await Promise.race([Promise.resolve().then(() => action(record.input, context)), aborted])) ?? null;
    const size = Buffer.byteLength(JSON.stringify(output));
    if (size > MAX_OUTPUT_BYTES) {
      const message = `output is ${size} bytes, over the limit of ${MAX_OUTPUT_BYTES}`;
      return { ok: false, error: { code: "OutputTooLarge", message }, retryable: false };
    }
    return { ok: true, output };
  } catch (error) {
    const cause = controller.signal.aborted ? controller.signal.reason : error;
    if (cause instanceof ActionError) {
      return { ok: false, error: { code: cause.code, message: cause.message }, retryable: cause.retryable };
    }
    const err = cause instanceof Error ? cause : new Error(String(cause));
    return { ok: false, error: { code: err.name || "Error", message: err.message }, retryable: true };
  }
}
