import { config } from "../config";
import { eventPut } from "../store/events";
import { keys } from "../store/keys";
import { transact } from "../store/transaction";
import type { TaskRecord } from "./task-record";

/**
 * The run is no longer running (cancelled): a queued execution becomes cancelled, once. Running
 * executions are left to finish; their results are recorded and start nothing.
 */
export async function cancelQueued(record: TaskRecord, now = new Date()): Promise<void> {
  if (record.status !== "queued") return;
  await transact([
    {
      Update: {
        TableName: config.tableName(),
        Key: keys.task(record.runId, record.task),
        UpdateExpression: "SET #status = :cancelled, endedAt = :now REMOVE sweepShard, sweepAt, notBefore",
        // closes: a worker claiming the execution while the cancellation sweeps it
        ConditionExpression: "#status = :queued",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":cancelled": "cancelled",
          ":queued": "queued",
          ":now": now.toISOString(),
        },
      },
    },
    eventPut(record.runId, "TaskCancelled", { task: record.task }),
  ]);
}
