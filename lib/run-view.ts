/**
 * What the API shows of a run: its state with each task's progress, why it or a task waits (a
 * concurrency key, a concurrency limit's slot), and its history.
 */

import { isSuspended } from "./engine/callback-token";
import { unqueued } from "./engine/fill";
import { itemRecords } from "./engine/items";
import { readLock } from "./engine/lock";
import { recordsOnRun, unwrittenOnRun } from "./engine/plan";
import { limitOf, readLimit } from "./engine/slot";
import { isFanOut, type TaskItem, type TaskRecord } from "./engine/task-record";
import { InvalidQueryError, TaskNotFoundError } from "./errors";
import { requireRun } from "./runs";
import { listEvents, type RunEvent, timeOfSortId } from "./store/events";
import { keys } from "./store/keys";
import { type RunRecord, type RunStatus, readItem, readTasks } from "./store/run-state";
import { getWorkflowVersion } from "./workflows";

export interface TaskView {
  status: string;
  attempts?: number;
  error?: unknown;
  /** With-items tasks, from the counters: `queued` wait for a concurrency slot, `running` are dispatched and unsettled. */
  items?: {
    total: number;
    queued: number;
    running: number;
    succeeded: number;
    failed: number;
    cancelled?: number;
  };
  /**
   * Why it waits for a slot of its action's concurrency limit: the limit, the slots taken, and how
   * many of its executions are parked in the limit's queue (a plain task: its place in it, 1 = next).
   */
  waitingFor?: SlotWait | CallbackWait;
}

export interface SlotWait {
  action: string;
  maxRunning: number;
  active: number;
  waiting: number;
  position?: number;
}

/** A callback task waiting for its token: until when it holds (its next heartbeat due, or its timeout). */
export interface CallbackWait {
  callback: true;
  until?: string;
}

function taskView(t: TaskItem): TaskView {
  const error = t.error ? { error: t.error } : {};
  if (!isFanOut(t)) {
    const waiting = isSuspended(t) ? { waitingFor: { callback: true as const, until: t.leaseUntil } } : {};
    return { status: t.status, attempts: t.attempt, ...error, ...waiting };
  }
  const notStarted = unqueued(t);
  const items: NonNullable<TaskView["items"]> = {
    total: t.total,
    queued: t.status === "running" ? notStarted : 0,
    running: t.active,
    succeeded: t.succeededItems,
    failed: t.failedItems,
  };
  const cancelled = (t.cancelledItems ?? 0) + (t.status === "running" ? 0 : notStarted);
  if (cancelled > 0) items.cancelled = cancelled;
  return { status: t.status, ...error, items };
}

export interface RunView {
  runId: string;
  workflow: string;
  version: number;
  status: RunStatus;
  input: unknown;
  output: unknown;
  error: unknown;
  tasks: Record<string, TaskView>;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  /** How many times the run was redriven (absent: never). */
  redriveCount?: number;
  /** The run's evaluated concurrency key, when its workflow has one. */
  concurrencyKey?: string;
  /** Why a `waiting` run waits: the run holding its key, and its place in the queue (1: next). */
  waitingFor?: { concurrencyKey: string; holder: string | null; position: number };
}

/** A waiting run's place behind its key's holder, from the lock item. */
async function waitingFor(run: RunRecord): Promise<RunView["waitingFor"]> {
  if (run.status !== "waiting" || run.concurrencyKey === undefined) return undefined;
  const lock = await readLock(run.workflow, run.concurrencyKey);
  return {
    concurrencyKey: run.concurrencyKey,
    holder: lock?.holder ?? null,
    position: (lock?.waiting.indexOf(run.runId) ?? -1) + 1,
  };
}

/** For each task of the run waiting for a limit's slot, what it waits for, from the limits' items. */
async function slotWaits(run: RunRecord, tasks: TaskItem[]): Promise<Map<string, SlotWait>> {
  const waits = new Map<string, SlotWait>();
  const open = tasks.filter((t) => t.status === "running" || t.status === "queued");
  if (open.length === 0) return waits;
  const { definition } = await getWorkflowVersion(run.workflow, run.version);
  for (const t of open) {
    const limit = limitOf(definition, definition.tasks[t.task]?.action ?? "");
    if (!limit) continue;
    const record = await readLimit(limit);
    const prefix = `${run.runId}/${t.task}/`;
    const positions = (record?.waiting ?? []).flatMap((entry, index) =>
      entry.startsWith(prefix) ? [index + 1] : [],
    );
    if (positions.length === 0) continue;
    waits.set(t.task, {
      action: limit.action,
      maxRunning: limit.maxRunning,
      active: record?.active ?? 0,
      waiting: positions.length,
      ...(isFanOut(t) ? {} : { position: positions[0] }),
    });
  }
  return waits;
}

/**
 * The plain tasks of a running run queued on it without their records (engine/dispatch.ts), of
 * those `wanted`: their first claims put them. Each is shown `queued` since its queueing, with
 * its input as planned.
 */
async function unwritten(
  run: RunRecord,
  written: TaskItem[],
  wanted: (task: string) => boolean,
): Promise<TaskRecord[]> {
  if (run.status !== "running") return [];
  const queued = unwrittenOnRun(run, written).filter(([task]) => wanted(task));
  return recordsOnRun(run, written, queued, new Date());
}

/** One task queued on its run without its record, as `unwritten` shows it. */
async function unwrittenTask(runId: string, task: string): Promise<TaskRecord | undefined> {
  const run = await requireRun(runId);
  if (run.queued?.[task] === undefined) return undefined;
  return (await unwritten(run, await readTasks(runId), (name) => name === task))[0];
}

export async function getRunView(runId: string): Promise<RunView> {
  const [run, written] = await Promise.all([requireRun(runId), readTasks(runId)]);
  const tasks = [...written, ...(await unwritten(run, written, () => true))];
  const waits = await slotWaits(run, tasks);
  return {
    runId,
    workflow: run.workflow,
    version: run.version,
    status: run.status,
    input: run.input,
    output: run.output ?? null,
    error: run.error ?? null,
    tasks: Object.fromEntries(
      tasks.map((t) => [
        t.task,
        { ...taskView(t), ...(waits.has(t.task) ? { waitingFor: waits.get(t.task) } : {}) },
      ]),
    ),
    createdAt: run.createdAt,
    startedAt: run.startedAt ?? null,
    endedAt: run.endedAt ?? null,
    ...(run.redriveCount ? { redriveCount: run.redriveCount } : {}),
    ...(run.concurrencyKey !== undefined ? { concurrencyKey: run.concurrencyKey } : {}),
    ...(run.status === "waiting" ? { waitingFor: await waitingFor(run) } : {}),
  };
}

export async function getRunEvents(runId: string): Promise<{ events: RunEvent[] }> {
  await requireRun(runId);
  return { events: await listEvents(runId) };
}

/** `GET /runs/{runId}/tasks/{task}[?item=N]`: one execution, what a plain task or an item was given and gave. */
export interface ExecutionView {
  runId: string;
  task: string;
  /** The item's index, for an item of a with-items task. */
  item?: number;
  status: string;
  action: string;
  /** The current (or last) attempt; 0 before the first. */
  attempts: number;
  /** The evaluated input (absent while an item waits to be started). */
  input: unknown;
  output: unknown;
  error: unknown;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  waitingFor?: CallbackWait;
}

/** `GET /runs/{runId}/tasks/{task}` of a with-items task: its counters (an item: `?item=N`). */
export interface FanOutView {
  runId: string;
  task: string;
  status: string;
  error: unknown;
  items: NonNullable<TaskView["items"]>;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
}

export type TaskDetail = ExecutionView | FanOutView;

/** One task of a run (or one item of a with-items task, `item`), with its input and output. */
export async function getTaskDetail(
  runId: string,
  task: string,
  query: Record<string, string | undefined> = {},
): Promise<TaskDetail> {
  const item = parseItemQuery(query);
  const record =
    (await readItem<TaskItem>(keys.execution({ runId, task, item }))) ??
    (item === undefined ? await unwrittenTask(runId, task) : await notQueuedYet(runId, task, item));
  if (!record) {
    await requireRun(runId);
    throw new TaskNotFoundError(runId, task, item);
  }
  const times = {
    createdAt: record.createdAt,
    startedAt: record.startedAt ?? null,
    endedAt: record.endedAt ?? null,
  };
  if (isFanOut(record)) {
    const view = taskView(record);
    return {
      runId,
      task,
      status: record.status,
      error: record.error ?? null,
      items: view.items as FanOutView["items"],
      ...times,
    };
  }
  const view = taskView(record);
  return {
    runId,
    task,
    ...(item === undefined ? {} : { item }),
    status: record.status,
    action: record.action,
    attempts: record.attempt,
    input: record.input ?? null,
    output: record.output ?? null,
    error: record.error ?? record.inputError ?? null,
    ...times,
    ...(view.waitingFor ? { waitingFor: view.waitingFor as CallbackWait } : {}),
  };
}

/**
 * An item of a started with-items task that has no record of its own yet (engine/items.ts): one a
 * fill queued (below `nextIndex`, not claimed yet) is shown `queued`, since the last fill at the
 * latest; one not queued yet, `pending`. Either with its input from its chunk.
 */
async function notQueuedYet(runId: string, task: string, item: number): Promise<TaskRecord | undefined> {
  const parent = await readItem<TaskItem>(keys.task(runId, task));
  if (!parent || !isFanOut(parent) || !parent.chunk || item >= parent.total) return undefined;
  const record = (await itemRecords({ ...parent, chunk: parent.chunk }, [item])).get(item);
  const queued = item < parent.nextIndex && !parent.redo?.includes(item);
  return (
    record && {
      ...record,
      status: queued ? "queued" : "pending",
      attempt: 0,
      createdAt: queued && parent.filledAt ? timeOfSortId(parent.filledAt) : parent.createdAt,
    }
  );
}

function parseItemQuery(query: Record<string, string | undefined>): number | undefined {
  const problems = Object.keys(query)
    .filter((name) => name !== "item")
    .map((name) => ({ path: name, message: "unknown parameter (expected item)" }));
  const { item } = query;
  if (item !== undefined && !/^(0|[1-9]\d{0,5})$/.test(item))
    problems.push({ path: "item", message: "must be an item's index: a whole number from 0" });
  if (problems.length > 0) throw new InvalidQueryError(problems);
  return item === undefined ? undefined : Number(item);
}
