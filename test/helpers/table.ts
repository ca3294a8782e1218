import { QueryCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { db } from "../../lib/clients";
import { config } from "../../lib/config";
import { keys } from "../../lib/store/keys";

/**
 * Every item of the stack's table (or of one run's partition), sorted: to show that something
 * wrote nothing. The sweeper's tick (`SWEEPER/TICK`) is left out: it is the sweeper's clock,
 * rewritten every tick whatever the test does.
 */
export async function snapshotTable(runId?: string): Promise<string> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await db().send(
      runId
        ? new QueryCommand({
            TableName: config.tableName(),
            KeyConditionExpression: "pk = :pk",
            ExpressionAttributeValues: { ":pk": `RUN#${runId}` },
            ExclusiveStartKey: startKey,
            ConsistentRead: true,
          })
        : new ScanCommand({
            TableName: config.tableName(),
            ExclusiveStartKey: startKey,
            ConsistentRead: true,
          }),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  const key = (item: Record<string, unknown>) => `${item.pk}|${item.sk}`;
  const data = items.filter((item) => item.pk !== keys.sweeperTick.pk);
  return JSON.stringify(data.sort((a, b) => key(a).localeCompare(key(b))));
}

/** Takes a task's entry out of its run's `queued`: the run as if no advance had queued that task yet. */
export async function unqueueOnRun(runId: string, task: string): Promise<void> {
  await db().send(
    new UpdateCommand({
      TableName: config.tableName(),
      Key: keys.run(runId),
      UpdateExpression: "REMOVE #queued.#task",
      ExpressionAttributeNames: { "#queued": "queued", "#task": task },
    }),
  );
}
