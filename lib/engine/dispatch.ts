import { config } from "../config";
import { CALLBACK_ACTION, DEFAULT_CALLBACK_TIMEOUT_SECONDS } from "../definition/callback";
import type { WorkflowDefinition } from "../definition/types";
import { ExpressionError } from "../errors";
import { evaluateTemplate } from "../expression";
import { type QueuedItem, sendTasks } from "../queue";
import { IF_ABSENT } from "../store/conditional";
import { historyEvent } from "../store/events";
import { keys } from "../store/keys";
import { type TxItem, transact, type Write } from "../store/transaction";
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
 * A transaction item that holds only while the run is `running` (and, given `now`, only while
 * the run's deadline, if it has one, is still ahead).
 */
export function whileRunning(runId: string, now?: Date): TxItem {
  return {
    ConditionCheck: {
      TableName: config.tableName(),
      Key: keys.run(runId),
      // closes: dispatching after the run was cancelled, timed out or ended (or, given `now`, past its deadline)
      ConditionExpression: now
        ? "#status = :running AND (attribute_not_exists(deadline) OR deadline > :now)"
        : "#status = :running",
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

const TASKS_PER_TRANSACTION = 99; // and the run check: DynamoDB's 100

/**
 * Creates the executions (each behind its conditional put, all while the run is running), then
 * sends their messages. Executions that already exist were dispatched by someone else and are
 * skipped. Returns the names this call dispatched.
 */
export async function dispatch(runId: string, records: TaskRecord[]): Promise<string[]> {
  const dispatched: string[] = [];
  for (let i = 0; i < records.length; i += TASKS_PER_TRANSACTION) {
    let pending = records.slice(i, i + TASKS_PER_TRANSACTION);
    while (pending.length > 0) {
      const outcome = await transact([whileRunning(runId), ...pending.flatMap(taskCreation)]);
      if (outcome.ok) {
        dispatched.push(...pending.map((r) => r.task));
        break;
      }
      if (outcome.reasons[0]?.code === "ConditionalCheckFailed") return dispatched;
      // drop the executions that already exist (reason on their Put, at 1 + k), try the rest again
      pending = pending.filter((_, k) => outcome.reasons[1 + k]?.code !== "ConditionalCheckFailed");
    }
  }
  await sendTasks(dispatched.map((task) => ({ runId, task })));
  return dispatched;
}
