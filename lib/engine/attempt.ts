import { getAction } from "../actions/registry";
import { ActionError } from "../errors";
import { keepLease, type OnRenew } from "./lease";
import type { AttemptResult } from "./settle";
import { idempotencyKey, type TaskRecord } from "./task-record";

/** Outputs are stored on the execution's DynamoDB item, which must stay under 400 KB. */
export const MAX_OUTPUT_BYTES = 280 * 1024;

/**
 * Runs one attempt of an execution's action, bounded by its `timeoutSeconds` (the action's signal
 * is aborted and the attempt fails with the retryable `TaskTimedOut`), its lease kept alive
 * meanwhile. Never throws.
 */
export async function runAttempt(record: TaskRecord, onRenew?: OnRenew): Promise<AttemptResult> {
  if (record.inputError) return { ok: false, error: record.inputError, retryable: false };
  const action = getAction(record.action);
  if (!action) {
    const error = {
      code: "UnknownAction",
      message: `action '${record.action}' is not registered in this worker`,
    };
    return { ok: false, error, retryable: false };
  }
  const controller = new AbortController();
  // the attempt ends when the action does, or when it is aborted: timed out, or its lease lost
  const aborted = new Promise<never>((_, reject) =>
    controller.signal.addEventListener("abort", () => reject(controller.signal.reason)),
  );
  aborted.catch(() => {}); // a late abort, after the attempt ended, is nobody's concern
  const timer = setTimeout(() => {
    const message = `attempt timed out after ${record.timeoutSeconds} s`;
    controller.abort(new ActionError("TaskTimedOut", message, { retryable: true }));
  }, record.timeoutSeconds * 1000);
  const stopHeartbeat = keepLease(record, controller, onRenew);
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
  } finally {
    clearTimeout(timer);
    stopHeartbeat();
  }
}
