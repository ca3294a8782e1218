import { DEFAULT_RETRY, type TaskRecord } from "../../lib/engine/task-record";

/** An item of the with-items task `each`, queued at attempt 0, as the engine stores it; `fields` change it. */
export function itemRecord(runId: string, item: number, fields: Partial<TaskRecord> = {}): TaskRecord {
  return {
    runId,
    task: "each",
    item,
    status: "queued",
    attempt: 0,
    action: "core.noop",
    timeoutSeconds: 60,
    retry: DEFAULT_RETRY,
    createdAt: new Date().toISOString(),
    ...fields,
  };
}
