import { getAction } from "../actions/registry";
import { ActionError } from "../errors";
import type { AttemptResult } from "./settle";
import { idempotencyKey, type TaskRecord } from "./task-record";

/** Outputs are stored on the execution's DynamoDB item, which must stay under 400 KB. */
export const MAX_OUTPUT_BYTES = 280 * 1024;

/**
 * Runs one attempt of an execution's action, bounded by its `timeoutSeconds` (the action's signal
 * is aborted and the attempt fails with the retryable `TaskTimedOut`). Never throws.
 */
export async function runAttempt(record: TaskRecord): Promise<AttemptResult> {
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
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new ActionError("TaskTimedOut", `attempt timed out after ${record.timeoutSeconds} s`, {
        retryable: true,
      });
      controller.abort(error);
      reject(error);
    }, record.timeoutSeconds * 1000);
  });
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
      (await Promise.race([Promise.resolve().then(() => action(record.input, context)), timedOut])) ?? null;
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
  }
}
