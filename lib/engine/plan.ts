/**
 * What a task is given: the context its input template sees, and the plans of plain tasks queued
 * on their run without records (dispatch.ts), made again wherever one is needed without its
 * message: the run's look re-sending a lost one, the API showing one not claimed yet.
 */
import type { TaskMessage } from "../queue";
import { timeOfSortId } from "../store/events";
import type { RunRecord } from "../store/run-state";
import { getWorkflowVersion } from "../workflows";
import { planTasks, queuedWithout, type TemplateContext } from "./dispatch";
import { itemOutputs } from "./fanout";
import { isFanOut, type TaskItem, type TaskRecord } from "./task-record";

/**
 * What templates can see. A with-items task's output is assembled from its items, and only for
 * the tasks a template names, so a large fan-out is read only where it is used.
 */
export async function templateContext(
  run: RunRecord,
  tasks: TaskItem[],
  needs: (task: string) => boolean,
): Promise<TemplateContext> {
  const context: TemplateContext = { input: run.input, tasks: {} };
  for (const t of tasks) {
    let output: unknown;
    if (!isFanOut(t)) output = t.output;
    else if (t.status !== "running" && needs(t.task)) output = await itemOutputs(t);
    context.tasks[t.task] = { status: t.status, output, error: t.error };
  }
  return context;
}

/** Whether templates may read `tasks.NAME` (plain or backquoted), judged from their text. */
export const mentions = (templates: unknown) => {
  const text = JSON.stringify(templates ?? null);
  return (task: string) => text.includes(`tasks.${task}`) || text.includes(`tasks.\`${task}\``);
};

/** The tasks of `run` queued on it and without a record among `written`, with the sort ids of their `TaskQueued`. */
export const unwrittenOnRun = (run: RunRecord, written: TaskItem[]): [string, string][] => {
  const has = new Set(written.map((t) => t.task));
  return Object.entries(run.queued ?? {}).filter(([task]) => !has.has(task));
};

/**
 * The executions of tasks queued on `run` without records (`entries`: task and the sort id of its
 * `TaskQueued`), planned again as a dispatch plans them, each created at its queueing: inputs
 * evaluated from the run's input and the outputs of `tasks` (settled before they were queued, so
 * the same inputs, unless a template reads the clock or chance).
 */
export async function recordsOnRun(
  run: RunRecord,
  tasks: TaskItem[],
  entries: [string, string][],
  at: Date,
): Promise<TaskRecord[]> {
  if (entries.length === 0) return [];
  const { definition } = await getWorkflowVersion(run.workflow, run.version);
  const queuedAs = new Map(entries);
  const names = [...queuedAs.keys()];
  const inputs = mentions(names.map((t) => definition.tasks[t]?.input));
  const context = await templateContext(run, tasks, inputs);
  const records = await planTasks(run.runId, definition, names, context, at);
  return records.map((r) => ({ ...r, createdAt: timeOfSortId(queuedAs.get(r.task) as string) }));
}

/**
 * The task messages of those executions, each carrying its record: for sending one again (the
 * run's look, a repeated create, a redrive). The dedup id is the task's, so a copy of one still in
 * flight is dropped.
 */
export async function messagesOnRun(
  run: RunRecord,
  tasks: TaskItem[],
  entries: [string, string][],
  at: Date,
): Promise<TaskMessage[]> {
  const queuedAs = new Map(entries);
  return (await recordsOnRun(run, tasks, entries, at)).map((r) => ({
    runId: run.runId,
    task: r.task,
    queued: queuedWithout(r, queuedAs.get(r.task) as string),
  }));
}
