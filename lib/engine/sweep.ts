import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { GetCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { db } from "../clients";
import { config } from "../config";
import { sendTasks } from "../queue";
import { addSeconds, QUEUED_SWEEP_SECONDS, SWEEP_SHARDS, type TaskRecord } from "./task-record";

const PAGE = 100;

/**
 * Finds, through the sparse `sweep` index (never a table scan), executions whose next step is
 * overdue: queued but never claimed (the process died between the conditional put and the SQS
 * send, or the message was lost), waiting for a retry whose message is gone, or running with an
 * expired lease (the worker died). For each it sends the task message again with a new dedup
 * generation; the worker's conditional claim decides what happens, so a late or duplicate message
 * is harmless. Returns how many messages it sent.
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
  const { Item } = await db().send(
    new GetCommand({ TableName: config.tableName(), Key: { pk: key.pk, sk: key.sk }, ConsistentRead: true }),
  );
  const record = Item as TaskRecord | undefined;
  if (!record?.sweepAt || record.sweepAt > now.toISOString()) return false;
  try {
    await db().send(
      new UpdateCommand({
        TableName: config.tableName(),
        Key: { pk: key.pk, sk: key.sk },
        UpdateExpression: "SET sweepAt = :next",
        // closes: two sweepers (or a sweeper and a claim) acting on the same overdue execution
        ConditionExpression: "sweepAt = :seen",
        ExpressionAttributeValues: {
          ":seen": record.sweepAt,
          ":next": addSeconds(now, QUEUED_SWEEP_SECONDS).toISOString(),
        },
      }),
    );
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
  await sendTasks([{ runId: record.runId, task: record.task }], record.sweepAt);
  return true;
}
