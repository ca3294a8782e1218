import { config } from "../config";
import { CALLBACK_ACTION, DEFAULT_CALLBACK_TIMEOUT_SECONDS } from "../definition/callback";
import type { WorkflowDefinition } from "../definition/types";
import { ExpressionError } from "../errors";
import { evaluateTemplate } from "../expression";
import { type QueuedItem, sendTasks, type TaskMessage } from "../queue";
import { IF_ABSENT } from "../store/conditional";
import { historyEvent, sortId } from "../store/events";
import { keys } from "../store/keys";
import type { RunRecord } from "../store/run-state";
import { reasonAt, type TxItem, transact, type Write } from "../store/transaction";
import { limitOf } from "./slot";
import { DEFAULT_RETRY, DEFAULT_TIMEOUT_SECONDS, nextLook, type TaskRecord } from "./task-record";

/** An execution's evaluated input is stored on its DynamoDB item, next to its output. */
export const MAX_TASK_INPUT_BYTES = 100 * 1024;

/** What task input templates can see: `input`, `tasks.NAME.output`, and in with-items tasks `item` and `index`. */
export interface TemplateContext {
  input: unknown;
  tasks: Record<string, { status: string; output?: unknown; error?: unknown }>;
  item?: unknown;
  index?: number;
}

/** New execution records for `names`, inputs evaluated now (an input that fails to evaluate fails the task). */
export async function planTasks(
  runId: string,
  definition: WorkflowDefinition,
  names: string[],
  context: TemplateContext,
  now = new Date(),
): Promise<TaskRecord[]> {
  return Promise.all(
    names.map(async (task): Promise<TaskRecord> => {
      const spec = definition.tasks[task];
      if (!spec) throw new Error(`task ${task} is not in workflow ${definition.name}`);
      const record: TaskRecord = {
        runId,
        task,
        status: "queued",
        attempt: 0,
        action: spec.action,
        timeoutSeconds:
          spec.timeoutSeconds ??
          (spec.action === CALLBACK_ACTION ? DEFAULT_CALLBACK_TIMEOUT_SECONDS : DEFAULT_TIMEOUT_SECONDS),
        retry: { ...DEFAULT_RETRY, ...spec.retry },
        limit: limitOf(definition, spec.action),
        ...(spec.heartbeatSeconds !== undefined ? { heartbeatSeconds: spec.heartbeatSeconds } : {}),
        createdAt: now.toISOString(),
        // the time of its next look, by its run's look (look.ts): no sweepShard, so in no index
        sweepAt: nextLook(now),
      };
      try {
        record.input =
          spec.input === undefined
            ? null
            : await evaluateTemplate(spec.input, { ...context }, `tasks.${task}.input`);
      } catch (error) {
        if (!(error instanceof ExpressionError)) throw error;
        record.inputError = { code: error.code, message: error.message };
      }
      const size = Buffer.byteLength(JSON.stringify(record.input ?? null));
      if (size > MAX_TASK_INPUT_BYTES) {
        // the execution is one DynamoDB item (400 KB): too large an input fails the task, not the write
        record.input = null;
        record.inputError = {
          code: "InputTooLarge",
          message: `the task input is ${size} bytes, over ${MAX_TASK_INPUT_BYTES}`,
        };
      }
      return record;
    }),
  );
}

/**
 * What the message of an execution queued without its record carries (its first claim puts the
 * record, claim.ts): the record as planned, and the sort id of its `TaskQueued`.
 */
export function queuedWithout(record: Omit<TaskRecord, "createdAt">, queuedAs: string): QueuedItem {
  const {
    status: _s,
    attempt: _a,
    sweepAt: _w,
    sweepShard: _h,
    createdAt: _c,
    ...execution
  } = record as TaskRecord;
  return { execution, queuedAs };
}

/** The write that creates one execution, and its history event. */
export function taskCreation(record: TaskRecord): Write[] {
  return [
    {
      Put: {
        TableName: config.tableName(),
        Item: { ...keys.task(record.runId, record.task), ...record },
        // closes: two handlers dispatching the same successor; the second put fails (I3)
        ConditionExpression: IF_ABSENT,
      },
    },
    historyEvent(record.runId, "TaskQueued", { task: record.task }),
  ];
}

/**
 * The condition of the first claim of an execution queued without its record, which puts it
 * (claim.ts), or of the wind-down that closes it cancelled (cancel.ts): no record yet. (Every
 * record has a status; the condition is not `attribute_not_exists(pk)` so that it has a name of
 * its own.)
 */
export const FIRST_CLAIM = "attribute_not_exists(#status)";

/** The guard of a dispatch: the run is running and its deadline, if it has one, still ahead. */
export const WHILE_RUNNING = "#status = :running AND (attribute_not_exists(deadline) OR deadline > :now)";

/**
 * A transaction item that holds only while the run is `running` (and, given `now`, only while
 * the run's deadline, if it has one, is still ahead).
 */
export function whileRunning(runId: string, now?: Date): TxItem {
  return {
    ConditionCheck: {
      TableName: config.tableName(),
      Key: keys.run(runId),
      // closes: dispatching after the run was cancelled, timed out or ended (or, given `now`, past its deadline)
      ConditionExpression: now ? WHILE_RUNNING : "#status = :running",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: now
        ? { ":running": "running", ":now": now.toISOString() }
        : { ":running": "running" },
    },
  };
}

/** The guard of the cleanup of a run that ended: the run is not running (never once redriven). */
export const WHILE_ENDED = "#status <> :running";

/**
 * A transaction item that holds only while the run is not running: for the cleanup of a run that
 * ended (cancelled, failed, timed out), which must not touch it once a redrive restarted it.
 */
export function whileEnded(runId: string): TxItem {
  return {
    ConditionCheck: {
      TableName: config.tableName(),
      Key: keys.run(runId),
      // closes: a late cleanup of the ended run cancelling what a redrive just put back
      ConditionExpression: WHILE_ENDED,
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: { ":running": "running" },
    },
  };
}

/**
 * The guard of a successor's queueing on its run: not queued there yet (`#queued`, and the alias
 * of its task). A second advance that read the run before the first queued it sends nothing.
 */
export const NOT_QUEUED_YET = (task: string) => `attribute_not_exists(#queued.${task})`;
/** The same, on a run that has no `queued` yet (started with records, or before there was one). */
export const NONE_QUEUED_YET = "attribute_not_exists(#queued)";

/** What `dispatch` queued on the run (task -> sort id), and the message it held back, if any. */
export interface Dispatched {
  queued: Record<string, string>;
  held?: TaskMessage;
}

/** Successors queued in one write of the run (its update and condition expressions stay small). */
const QUEUED_PER_WRITE = 40;
/** Writes tried when racing advances queued some of the same successors meanwhile. */
const DISPATCH_TRIES = 5;

/**
 * Dispatches ready plain tasks of a running run: each is queued on the run (`queued`, with the
 * sort id of its `TaskQueued`) in one conditional update of the run, and its message carries its
 * record, which its first claim puts (claim.ts), so a successor costs one write of the run
 * instead of a transaction of the run's check and the execution's put. A successor whose message
 * is lost is sent again by the run's look (look.ts). An entry stays after its claim (a task is
 * dispatched once in a run; one redriven is put back through its record), so a late advance that
 * read the run before it was queued can never queue it again.
 *
 * With `hold`, the message of one task queued here is not sent but returned (`held`): the worker
 * that dispatched it runs it itself (work.ts). Held or sent, a message lost with its handler is
 * sent again by the run's look.
 *
 *   run   queued.T := sort id       if running AND before its deadline AND T not queued yet
 *                                   -- ALL_OLD, if not: ended -> nothing; else the rest again
 */
export async function dispatch(
  run: RunRecord,
  records: TaskRecord[],
  now = new Date(),
  hold = false,
): Promise<Dispatched> {
  const dispatched: Dispatched = { queued: {} };
  let queued = run.queued;
  let pending = records;
  for (let tries = 0; pending.length > 0 && tries < DISPATCH_TRIES; tries++) {
    const batch = pending.slice(0, QUEUED_PER_WRITE);
    const ids = new Map(batch.map((r) => [r.task, sortId()]));
    const outcome = await transact([queueOnRun(run.runId, ids, queued, now)]);
    if (outcome.ok) {
      const messages: TaskMessage[] = batch.map((r) => ({
        runId: run.runId,
        task: r.task,
        queued: queuedWithout(r, ids.get(r.task) as string),
      }));
      if (hold && dispatched.held === undefined) dispatched.held = messages.shift();
      await sendTasks(messages);
      Object.assign(dispatched.queued, Object.fromEntries(ids));
      queued = { ...queued, ...Object.fromEntries(ids) };
      pending = pending.slice(batch.length);
      continue;
    }
    const found = reasonAt(outcome, keys.run(run.runId))?.item as RunRecord | undefined;
    if (found?.status !== "running" || (found.deadline && found.deadline <= now.toISOString())) break;
    // a racing advance queued some of them: the rest, on the run as it is now
    queued = found.queued;
    pending = pending.filter((r) => found.queued?.[r.task] === undefined);
  }
  return dispatched;
}

/** The update of the run that queues the tasks of `ids` on it (`queued`: the run's, as read). */
function queueOnRun(
  runId: string,
  ids: Map<string, string>,
  queued: Record<string, string> | undefined,
  now: Date,
): TxItem {
  const names: Record<string, string> = { "#status": "status", "#queued": "queued" };
  const values: Record<string, unknown> = { ":running": "running", ":now": now.toISOString() };
  let set: string;
  let fresh: string;
  if (queued === undefined) {
    set = "#queued = :queued";
    values[":queued"] = Object.fromEntries(ids);
    fresh = NONE_QUEUED_YET;
  } else {
    const aliases = [...ids].map(([task, id], k) => {
      names[`#t${k}`] = task;
      values[`:t${k}`] = id;
      return `#t${k}`;
    });
    set = aliases.map((alias, k) => `#queued.${alias} = :t${k}`).join(", ");
    fresh = aliases.map(NOT_QUEUED_YET).join(" AND ");
  }
  return {
    Update: {
      TableName: config.tableName(),
      Key: keys.run(runId),
      UpdateExpression: `SET ${set}`,
      // closes: dispatching after the run was cancelled, timed out or ended; two advances that read
      // the run before either wrote both dispatching one successor (I3, I7)
      ConditionExpression: `${WHILE_RUNNING} AND ${fresh}`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    },
  };
}
