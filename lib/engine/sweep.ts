import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { db } from "../clients";
import { config } from "../config";
import { sendTasks } from "../queue";
import { updateIf } from "../store/conditional";
import { keys } from "../store/keys";
import { type RunRecord, readItem } from "../store/run-state";
import { advance } from "./advance";
import { isCounted } from "./counted";
import { isSettled } from "./evaluate";
import { publishUncounted } from "./fanout";
import {
  addSeconds,
  type FanOutRecord,
  QUEUED_SWEEP_SECONDS,
  SWEEP_SHARDS,
  type TaskRecord,
} from "./task-record";

const PAGE = 100;

/**
 * Finds, through the sparse `sweep` index (never a table scan), what is overdue:
 * - executions queued but never claimed (the process died between the conditional put and the
 *   SQS send, or the message was lost), waiting for a retry whose message is gone, or running
 *   with an expired lease (the worker died): their task message is sent again with a new dedup
 *   generation, and the worker's conditional claim decides what happens;
 * - running runs and with-items tasks, looked at every few minutes and at the run's deadline:
 *   `advance` times the run out, or finishes what a crash left undone (it is level-triggered).
 * Each is first postponed by a conditional write, so racing sweepers act once. Returns how many
 * it acted on.
 */
export async function sweep(now = new Date()): Promise<number> {
  let sent = 0;
  for (let shard = 0; shard < SWEEP_SHARDS; shard++) {
    const { Items = [] } = await db().send(
      new QueryCommand({
        TableName: config.tableName(),
        IndexName: "sweep",
        KeyConditionExpression: "sweepShard = :shard AND sweepAt <= :now",
        ExpressionAttributeValues: { ":shard": String(shard), ":now": now.toISOString() },
        Limit: PAGE,
      }),
    );
    for (const key of Items) {
      if (await resend(key as { pk: string; sk: string }, now)) sent++;
    }
  }
  return sent;
}

async function resend(key: { pk: string; sk: string }, now: Date): Promise<boolean> {
  const record = await readItem<(TaskRecord & { fanOut?: true }) | RunRecord>({ pk: key.pk, sk: key.sk });
  if (!record?.sweepAt || record.sweepAt > now.toISOString()) return false;
  const deadline = "deadline" in record ? record.deadline : undefined;
  const next = addSeconds(now, QUEUED_SWEEP_SECONDS).toISOString();
  const nextLook = deadline && deadline > now.toISOString() && deadline < next ? deadline : next;
  const execution = record as TaskRecord;
  if (execution.item !== undefined && isSettled(execution.status)) {
    // a cancelled item waits in the index until its completion is counted (cancel.ts): once it is,
    // it leaves the index; until then its completion is published again through its message
    const parent = await readItem<FanOutRecord>(keys.task(execution.runId, execution.task));
    if (parent && isCounted(parent, execution.item)) return leave(key, record.sweepAt);
  }
  if (!(await postpone(key, record.sweepAt, nextLook))) return false;
  if (key.sk === "RUN" || "fanOut" in record) {
    // a running run (or with-items task) looked at again: times out, or heals what a crash left
    if ("fanOut" in record) await publishUncounted(record as unknown as FanOutRecord);
    await advance(record.runId, [], now);
    return true;
  }
  const { runId, task, item, attempt } = record as TaskRecord;
  await sendTasks([{ runId, task, item, ...(attempt ? { attempt } : {}) }], record.sweepAt);
  return true;
}

/** Takes a counted item out of the sweeper's index. */
async function leave(key: { pk: string; sk: string }, seen: string): Promise<false> {
  await updateIf({
    TableName: config.tableName(),
    Key: { pk: key.pk, sk: key.sk },
    UpdateExpression: "REMOVE sweepShard, sweepAt",
    // closes: taking out an item that a redrive put back in the index meanwhile (to be queued again)
    ConditionExpression: "sweepAt = :seen",
    ExpressionAttributeValues: { ":seen": seen },
  });
  return false;
}

/** Moves the item's next look forward; false when another sweeper (or the engine) moved it first. */
function postpone(key: { pk: string; sk: string }, seen: string, next: string): Promise<boolean> {
  return updateIf({
    TableName: config.tableName(),
    Key: { pk: key.pk, sk: key.sk },
    UpdateExpression: "SET sweepAt = :next",
    // closes: two sweepers (or a sweeper and a claim) acting on the same overdue execution
    ConditionExpression: "sweepAt = :seen",
    ExpressionAttributeValues: {
      ":seen": seen,
      ":next": next,
    },
  });
}
