/**
 * A run's history, kept on the items whose transitions it records: a run's events in the run's
 * item, an execution's in the execution's item, each appended to the item's `log` by the very
 * write that makes the transition (`transact` merges them in). So an event exists exactly when its
 * transition happened, and it costs no write of its own: no item per event, no second item in a
 * transaction. `GET /runs/{id}/events` reads the run's partition and puts the entries in order.
 *
 * An entry is small (its sort id, type, attempt and detail; the task and item are its item's), so
 * that the few an execution collects (queued, started, succeeded, a retry or two) keep it small:
 * DynamoDB bills an update by the larger of the item's two images.
 */
import { randomBytes } from "node:crypto";
import { type Key, keys } from "./keys";
import { queryRunPartition } from "./run-state";

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

/** One entry of an item's `log`: `s` orders it (its time first), `t` is its type. */
export interface LogEntry {
  s: string;
  t: EventType;
  a?: number;
  d?: Record<string, unknown>;
}

/** The attribute of an item that holds its history entries. */
export const LOG_ATTRIBUTE = "log";

/**
 * An event to be recorded with a transition: `transact` appends it to the log of the item at
 * `key`, which must be written in the same call (a run's event goes on the run, a task's on its
 * execution).
 */
export interface HistoryEvent {
  history: { key: Key; entry: LogEntry };
}

export const isHistoryEvent = (value: object): value is HistoryEvent => "history" in value;

let lastMillis = 0;
let counter = 0;

/**
 * A sort id that orders events of one process strictly, and of several processes by their clocks.
 * An event recorded later than its transition (an item's `TaskQueued`, by its first claim) carries
 * the id made when the transition happened, so it keeps its place in the history.
 */
export function sortId(at = new Date()): string {
  const millis = at.getTime();
  counter = millis === lastMillis ? counter + 1 : 0;
  lastMillis = millis;
  return `${at.toISOString()}#${String(counter).padStart(4, "0")}#${randomBytes(4).toString("hex")}`;
}

/** The first sort id of the millisecond `iso`: for an event whose transition is known only by its time. */
export const firstSortIdAt = (iso: string): string => `${iso}#0000#00000000`;

/** The time a sort id was made at (`sortId`). */
export const timeOfSortId = (id: string): string => id.split("#")[0] as string;

/**
 * The event `type` of the run (no `task`) or of one of its executions, for the transaction of the
 * transition it records; `id`, the sort id made when the transition happened, if not now.
 */
export function historyEvent(
  runId: string,
  type: EventType,
  fields: Omit<RunEvent, "seq" | "at" | "type"> = {},
  id = sortId(),
): HistoryEvent {
  const { task, item, attempt, detail } = fields;
  const key = task === undefined ? keys.run(runId) : keys.execution({ runId, task, item });
  const entry: LogEntry = { s: id, t: type };
  if (attempt !== undefined) entry.a = attempt;
  if (detail !== undefined) entry.d = detail;
  return { history: { key, entry } };
}

interface LoggedItem {
  sk: string;
  task?: string;
  item?: number;
  log?: LogEntry[];
  /** A history event item of the earlier layout (`EVT#...`), written before histories moved onto items. */
  type?: EventType;
  at?: string;
  attempt?: number;
  detail?: Record<string, unknown>;
}

/** The events recorded on one item of the run's partition, with the sort id that orders them. */
export function eventsOfItem(item: LoggedItem): { sortId: string; event: Omit<RunEvent, "seq"> }[] {
  if (item.sk.startsWith(keys.eventPrefix)) {
    const { type, at, task, item: index, attempt, detail } = item;
    return [
      {
        sortId: item.sk.slice(keys.eventPrefix.length),
        event: { at, type, task, item: index, attempt, detail },
      },
    ] as { sortId: string; event: RunEvent }[];
  }
  const onRun = item.sk === "RUN";
  return (item.log ?? []).map((e) => ({
    sortId: e.s,
    event: {
      at: e.s.slice(0, e.s.indexOf("#")),
      type: e.t,
      task: onRun ? undefined : item.task,
      item: onRun ? undefined : item.item,
      attempt: e.a,
      detail: e.d,
    },
  }));
}

/** The attributes of a run's items that hold its history. */
const HISTORY_PROJECTION = {
  expression: "sk, #task, #item, #log, #type, #at, attempt, detail",
  names: { "#task": "task", "#item": "item", "#log": LOG_ATTRIBUTE, "#type": "type", "#at": "at" },
};

/** The run's history in order; `seq` is the position in it, starting at 1. */
export async function listEvents(runId: string): Promise<RunEvent[]> {
  const items = await queryRunPartition(runId, HISTORY_PROJECTION);
  const found = items.flatMap((item) => eventsOfItem(item as unknown as LoggedItem));
  found.sort((a, b) => (a.sortId < b.sortId ? -1 : a.sortId > b.sortId ? 1 : 0));
  return found.map(({ event }, index) => {
    const e: RunEvent = { seq: index + 1, at: event.at, type: event.type };
    if (event.task !== undefined) e.task = event.task;
    if (event.item !== undefined) e.item = event.item;
    if (event.attempt !== undefined) e.attempt = event.attempt;
    if (event.detail !== undefined) e.detail = event.detail;
    return e;
  });
}
