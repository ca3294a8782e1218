import { config } from "../config";
import { eventPut } from "../store/events";
import { keys } from "../store/keys";
import { readTasks } from "../store/run-state";
import { transact } from "../store/transaction";
import { type FanOutRecord, isFanOut, type TaskRecord } from "./task-record";

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
        Key: keys.execution(record),
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
    eventPut(record.runId, "TaskCancelled", { task: record.task, item: record.item }),
  ]);
}

/**
 * The run was cancelled: a running with-items task becomes cancelled, so no slot is refilled.
 * Its queued items are cancelled when their messages arrive (the claim holds only while the run
 * runs); its running items finish and are recorded.
 */
export async function cancelFanOut(parent: FanOutRecord, now = new Date()): Promise<void> {
  if (parent.status !== "running") return;
  await transact([
    {
      Update: {
        TableName: config.tableName(),
        Key: keys.task(parent.runId, parent.task),
        UpdateExpression:
          "SET #status = :cancelled, endedAt = :now, version = version + :one REMOVE sweepShard, sweepAt",
        // closes: a countdown settling the task while the cancellation marks it
        ConditionExpression: "#status = :running",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":cancelled": "cancelled",
          ":running": "running",
          ":now": now.toISOString(),
          ":one": 1,
        },
      },
    },
    eventPut(parent.runId, "TaskCancelled", { task: parent.task }),
  ]);
}

/** After the run ended early (cancelled, timed out): nothing queued runs, no slot is refilled. */
export async function cancelRemaining(runId: string): Promise<void> {
  for (const task of await readTasks(runId)) await (isFanOut(task) ? cancelFanOut(task) : cancelQueued(task));
}
