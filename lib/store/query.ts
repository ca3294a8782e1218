import { QueryCommand, type QueryCommandInput } from "@aws-sdk/lib-dynamodb";
import { db } from "../clients";
import { config } from "../config";

/** Every item a Query on the table (or one of its indexes) finds, all pages. */
export async function queryAll(input: Omit<QueryCommandInput, "TableName" | "ExclusiveStartKey">) {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await db().send(
      new QueryCommand({ ...input, TableName: config.tableName(), ExclusiveStartKey: startKey }),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}
