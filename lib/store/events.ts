import { randomBytes } from "node:crypto";
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { db } from "../clients";
import { config } from "../config";
import { keys } from "./keys";
import type { TxItem } from "./transaction";

export type EventType =
  | "RunCreated"
  | "RunStarted"
  | "RunSucceeded"
  | "RunFailed"
  | "RunCancelled"
  | "TaskQueued"
  | "TaskStarted"
  | "TaskSucceeded"
  | "TaskFailed"
  | "TaskRetrying"
  | "TaskCancelled";

export interface RunEvent {
  seq: number;
  at: string;
  type: EventType;
  task?: string;
  item?: number;
  attempt?: number;
  detail?: Record<string, unknown>;
}

let lastMillis = 0;
let counter = 0;

/** A sort id that orders events of one process strictly, and of several processes by their clocks. */
function sortId(at: Date): string {
  const millis = at.getTime();
  counter = millis === lastMillis ? counter + 1 : 0;
  lastMillis = millis;
  return `${at.toISOString()}#${String(counter).padStart(4, "0")}#${randomBytes(4).toString("hex")}`;
}

/**
 * The Put of one history event, to go into the same transaction as the transition it records: the
 * event exists exactly when the transition happened.
 */
export function eventPut(
  runId: string,
  type: EventType,
  fields: Omit<RunEvent, "seq" | "at" | "type"> = {},
  at = new Date(),
): TxItem {
  return {
    Put: {
      TableName: config.tableName(),
      Item: { ...keys.event(runId, sortId(at)), type, at: at.toISOString(), ...fields },
    },
  };
}

/** The run's history in order; `seq` is the position in it, starting at 1. */
export async function listEvents(runId: string): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await db().send(
      new QueryCommand({
        TableName: config.tableName(),
        KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues: { ":pk": keys.runPartition(runId), ":prefix": keys.eventPrefix },
        ExclusiveStartKey: startKey,
        ConsistentRead: true,
      }),
    );
    for (const item of page.Items ?? []) {
      const { pk: _pk, sk: _sk, type, at, task, item: index, attempt, detail } = item;
      events.push({ seq: events.length + 1, at, type, task, item: index, attempt, detail });
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return events;
}
