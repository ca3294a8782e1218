/**
 * Starting a run: what it writes, in whichever transaction starts it (its creation, a trigger, or
 * the hand-over of a concurrency-key lock), and its start tasks.
 */

import { config } from "../config";
import { startTasks } from "../definition/graph";
import type { TaskMessage } from "../queue";
import { historyEvent, sortId } from "../store/events";
import { keys } from "../store/keys";
import type { RunRecord } from "../store/run-state";
import type { TxItem, Write } from "../store/transaction";
import type { WorkflowVersion } from "../workflows";
import { planTasks, queuedWithout, taskCreation } from "./dispatch";
import { addSeconds, QUEUED_SWEEP_SECONDS, sweepShard } from "./task-record";

/** How often the sweeper looks at a running run without a nearer deadline (a stuck run heals). */
const RUN_SWEEP_SECONDS = QUEUED_SWEEP_SECONDS;
/** Start tasks created in the starting transaction (DynamoDB takes 100 items a transaction). */
const START_TASKS_IN_TRANSACTION = 40;

export type StartFields = Pick<RunRecord, "startedAt" | "deadline" | "sweepShard" | "sweepAt" | "queued">;

export interface RunStart {
  /** What the run's item gets when it starts: its deadline, and its place in the sweeper's index. */
  fields: StartFields;
  /**
   * The messages of the plain start tasks dispatched with it; the others are started by `advance`
   * right after. When the start leaves nothing to `advance`, the start tasks are queued on the run
   * without their records, as `advance` queues successors (dispatch.ts): each message carries its
   * task's record, which its first claim puts (claim.ts), so a run of one task starts with one
   * write (its run). Otherwise they are created in the starting transaction.
   */
  tasks: TaskMessage[];
  /** The RunStarted event, and the start tasks' creation if they are created, for the starting transaction. */
  writes: Write[];
}

export function startFields(runId: string, workflow: WorkflowVersion, now: Date): StartFields {
  const timeout = workflow.definition.timeoutSeconds;
  const deadline = timeout ? addSeconds(now, timeout).toISOString() : undefined;
  const check = addSeconds(now, RUN_SWEEP_SECONDS).toISOString();
  return {
    startedAt: now.toISOString(),
    deadline,
    sweepShard: sweepShard(runId),
    sweepAt: deadline && deadline < check ? deadline : check,
  };
}

/**
 * Plans the start of `run`: the plain start tasks that fit in the starting transaction (with-items
 * tasks, or more than fit, are started by `advance` right after; should the process die in
 * between, the sweeper's periodic look at the running run starts them).
 */
export async function planStart(
  run: RunRecord,
  workflow: WorkflowVersion,
  now = new Date(),
): Promise<RunStart> {
  const { definition } = workflow;
  const starts = startTasks(definition);
  const names = starts
    .filter((task) => definition.tasks[task]?.withItems === undefined)
    .slice(0, START_TASKS_IN_TRANSACTION);
  const tasks = await planTasks(run.runId, definition, names, { input: run.input, tasks: {} }, now);
  const fields = startFields(run.runId, workflow, now);
  const started = historyEvent(run.runId, "RunStarted");
  if (names.length < starts.length) {
    const messages = tasks.map((t) => ({ runId: run.runId, task: t.task }));
    return { fields, tasks: messages, writes: [started, ...tasks.flatMap(taskCreation)] };
  }
  // queued on the run (dispatch.ts), their TaskQueued sorting after RunStarted (made after it)
  const queued = Object.fromEntries(tasks.map((t) => [t.task, sortId()]));
  const messages = tasks.map((t) => ({
    runId: run.runId,
    task: t.task,
    queued: queuedWithout(t, queued[t.task] as string),
  }));
  return { fields: { ...fields, queued }, tasks: messages, writes: [started] };
}

/** The guard of a run's start: the run still has the status it leaves (F2, I1). */
export const START_FROM = "#status = :from";

/**
 * The run's own change when it starts (`running`, with its start fields), or, given no start,
 * when a waiting run gets its key without starting (`pending`, for a trigger). Conditional on the
 * status it leaves; `ALL_OLD` tells a loser the status it found.
 */
export function startTransition(
  runId: string,
  start: RunStart | undefined,
  from: "pending" | "waiting",
): TxItem {
  const fields: Record<string, unknown> = { ...start?.fields, status: start ? "running" : "pending" };
  const set = Object.keys(fields).filter((k) => fields[k] !== undefined);
  return {
    Update: {
      TableName: config.tableName(),
      Key: keys.run(runId),
      UpdateExpression: `SET ${set.map((k) => `#${k} = :${k}`).join(", ")} REMOVE startOnLock`,
      // closes: two triggers starting one run (F2, I1), or a lock passed to a run no longer waiting
      ConditionExpression: START_FROM,
      ExpressionAttributeNames: Object.fromEntries(set.map((k) => [`#${k}`, k])),
      ExpressionAttributeValues: {
        ...Object.fromEntries(set.map((k) => [`:${k}`, fields[k]])),
        ":from": from,
      },
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
    },
  };
}
