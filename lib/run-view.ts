/**
 * What the API shows of a run: its state with each task's progress, why it or a task waits (a
 * concurrency key, a concurrency limit's slot), and its history.
 */

import { isSuspended } from "./engine/callback-token";
import { unqueued } from "./engine/fanout";
import { readLock } from "./engine/lock";
import { limitOf, readLimit } from "./engine/slot";
import { isFanOut, type TaskItem } from "./engine/task-record";
import { requireRun } from "./runs";
import { listEvents, type RunEvent } from "./store/events";
import { type RunRecord, type RunStatus, readTasks } from "./store/run-state";
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

export async function getRunView(runId: string): Promise<RunView> {
  const [run, tasks] = await Promise.all([requireRun(runId), readTasks(runId)]);
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
