import { randomBytes } from "node:crypto";
import { config } from "../config";
import { keys } from "./keys";
import { queryRunItems } from "./run-state";
import type { TxItem } from "./transaction";

export type EventType =
  | "RunCreated"
  | "RunStarted"
  | "RunSucceeded"
  | "RunFailed"
  | "RunCancelled"
  | "Redriven"
  | "TaskQueued"
  | "TaskStarted"
  | "TaskSucceeded"
  | "TaskFailed"
  | "TaskRetrying"
  | "TaskCancelled"
  | "CallbackIssued"
  | "CallbackReceived"
  | "LockWaiting"
  | "LockAcquired"
  | "LockReleased"
  | "SlotWaiting"
  | "SlotAcquired";

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
  const items = await queryRunItems(runId, keys.eventPrefix);
  return items.map(({ type, at, task, item, attempt, detail }, index) => ({
    seq: index + 1,
    at,
    type,
    task,
    item,
    attempt,
    detail,
  })) as RunEvent[];
}
