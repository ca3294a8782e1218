/**
 * Redrive: a failed run starts again from what failed, keeping everything that succeeded (and a
 * failure a `when: failed` transition handled: its handler ran, so it is not put back). One
 * transaction, conditional on the run still being `failed` (and on its redrive count), takes the
 * run back to `running` with a new deadline and puts every failed or cancelled execution back:
 *
 *   run                 failed -> running, redriveCount += 1     if status = failed AND redriveCount as read
 *   plain task          failed|cancelled -> queued              if status and attempt as read
 *   with-items task     failed|cancelled -> running, its failed and cancelled items in `redo` (and, with
 *                       this redrive, in `putBack`)
 *                                                               if version as read (fill queues them again)
 *   with-items task whose items could not be evaluated: deleted, so that it starts afresh
 *   plain task queued on the run, never claimed (no record)          if still no record; sent again
 *
 * Attempt numbers go on (a redriven execution's next attempt is its last one + 1, so a zombie of an
 * old attempt stays fenced out, I8); the retry policy counts again from the redrive (`attemptBase`).
 * Tasks that succeeded, and items that succeeded, never run again. Executions still running (a run
 * that timed out winds down first) make the redrive wait: 409 until they ended.
 */
import { config } from "../config";
import { RunNotRedrivableError } from "../errors";
import { historyEvent } from "../store/events";
import { keys } from "../store/keys";
import { queryRunItems, type RunRecord } from "../store/run-state";
import type { TxItem, Write } from "../store/transaction";
import type { WorkflowVersion } from "../workflows";
import { isCounted } from "./counted";
import { failureHandled } from "./evaluate";
import { VERSION_FENCE } from "./fill";
import { unwrittenOnRun } from "./plan";
import { startFields } from "./start";
import { type FanOutRecord, isFanOut, sweepValues, type TaskItem, type TaskRecord } from "./task-record";

/** The guard of a redrive: the run failed, at the redrive count read (of concurrent redrives, one). */
export const REDRIVABLE =
  "#status = :failed AND (attribute_not_exists(redriveCount) OR redriveCount = :seen)";

/**
 * The guard of a redrive on a task queued on the run without its record (dispatch.ts): still none.
 * A first claim that put it meanwhile found the run not running and cancelled it: the redrive must
 * read it again and put it back, or the redriven run would carry a cancelled task (sim crash 1312).
 */
export const STILL_UNWRITTEN = "attribute_not_exists(#task)"; // (every record has a task: a name of its own)

/**
 * That guard as a switch, for its guard-removal test only (regressions.test.ts pins the
 * interleaving that needs it; the simulation met it once in 12,000 schedules). Never changed
 * outside tests.
 */
export const redriveGuards = { stillUnwritten: true };

/** The run item and its history event, plus one write per execution put back: under DynamoDB's 100. */
const MAX_TASKS_PUT_BACK = 96;

export interface RedrivePlan {
  redriveCount: number;
  writes: Write[];
  /** Plain tasks put back in the queue: their messages go out once the transaction committed. */
  queued: string[];
  /** Tasks queued on the run without records, and the sort ids of their TaskQueued: sent again once committed. */
  unwritten: [string, string][];
}

const putBack = (status: string) => status === "failed" || status === "cancelled";

export async function planRedrive(
  run: RunRecord,
  tasks: TaskItem[],
  workflow: WorkflowVersion,
  now = new Date(),
): Promise<RedrivePlan> {
  if (run.status !== "failed") throw new RunNotRedrivableError(run.runId, run.status);
  // a with-items task still `running` (its items idle: a run that timed out between two of them)
  // is cancelled by the run's wind-down: it is busy too, or the wind-down could cancel it after
  // this read and the redriven run would carry a cancelled task nobody put back (sim seed 2, stall)
  const busy = tasks.filter((t) =>
    isFanOut(t) ? t.active > 0 || t.status === "running" : t.status === "queued" || t.status === "running",
  );
  if (busy.length > 0) {
    throw new RunNotRedrivableError(
      run.runId,
      run.status,
      `tasks ${busy.map((t) => t.task).join(", ")} of the run are still winding down; try again shortly`,
    );
  }
  const redriveCount = (run.redriveCount ?? 0) + 1;
  // a failure handled by a `when: failed` transition did not fail the run: its handler ran instead
  const back = tasks.filter(
    (t) => putBack(t.status) && !(t.status === "failed" && failureHandled(workflow.definition, t.task)),
  );
  const unwritten = unwrittenOnRun(run, tasks);
  if (back.length + unwritten.length > MAX_TASKS_PUT_BACK) {
    throw new RunNotRedrivableError(
      run.runId,
      run.status,
      `${back.length} tasks to put back, over ${MAX_TASKS_PUT_BACK}`,
    );
  }
  const sweep = sweepValues(run.runId, now);
  const writes: Write[] = [];
  const items: Record<string, number> = {};
  for (const t of back) {
    if (!isFanOut(t)) writes.push(plainPutBack(t, sweep[":sweepAt"]));
    else if (t.total === 0 && t.error) writes.push(fanOutRestart(t));
    else {
      const redo = await itemsPutBack(t);
      items[t.task] = redo.length;
      writes.push(fanOutPutBack(t, redo, redriveCount, sweep));
    }
  }
  for (const [task] of redriveGuards.stillUnwritten ? unwritten : []) {
    writes.push({
      ConditionCheck: {
        TableName: config.tableName(),
        Key: keys.task(run.runId, task),
        // closes: a first claim putting the task (cancelled, the run not running) after this read
        ConditionExpression: STILL_UNWRITTEN,
        ExpressionAttributeNames: { "#task": "task" },
      },
    });
  }
  const fields = startFields(run.runId, workflow, now);
  writes.unshift(
    {
      Update: {
        TableName: config.tableName(),
        Key: keys.run(run.runId),
        UpdateExpression:
          "SET #status = :running, redriveCount = :count, redrivenAt = :now, sweepShard = :shard, sweepAt = :sweepAt" +
          `${fields.deadline ? ", deadline = :deadline" : ""} REMOVE #error, endedAt`,
        // closes: two redrives of one run both restarting it, and a redrive racing another one's end
        ConditionExpression: REDRIVABLE,
        ExpressionAttributeNames: { "#status": "status", "#error": "error" },
        ExpressionAttributeValues: {
          ":running": "running",
          ":failed": "failed",
          ":count": redriveCount,
          ":seen": redriveCount - 1,
          ":now": now.toISOString(),
          ":shard": fields.sweepShard,
          ":sweepAt": fields.sweepAt,
          ...(fields.deadline ? { ":deadline": fields.deadline } : {}),
        },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    },
    historyEvent(run.runId, "Redriven", {
      detail: { redriveCount, tasks: back.map((t) => t.task), items, previousError: run.error },
    }),
  );
  return { redriveCount, writes, queued: back.filter((t) => !isFanOut(t)).map((t) => t.task), unwritten };
}

/** A failed or cancelled plain task queued again, its next look at `sweepAt` (it is in no index). */
function plainPutBack(t: TaskRecord, sweepAt: string): TxItem {
  return {
    Update: {
      TableName: config.tableName(),
      Key: keys.task(t.runId, t.task),
      UpdateExpression:
        "SET #status = :queued, attemptBase = attempt, sweepAt = :sweepAt REMOVE #error, endedAt",
      // closes: putting back an execution that moved since it was read (a late worker, a second redrive)
      ConditionExpression: "#status = :seen AND attempt = :attempt",
      ExpressionAttributeNames: { "#status": "status", "#error": "error" },
      ExpressionAttributeValues: {
        ":queued": "queued",
        ":seen": t.status,
        ":attempt": t.attempt,
        ":sweepAt": sweepAt,
      },
    },
  };
}

/** Items of a with-items task that failed or were cancelled (and were counted down), in index order. */
async function itemsPutBack(t: FanOutRecord): Promise<TaskRecord[]> {
  const items = (await queryRunItems(t.runId, keys.itemPrefix(t.task))) as unknown as TaskRecord[];
  return items.filter((i) => putBack(i.status) && isCounted(t, i.item as number));
}

function fanOutPutBack(
  t: FanOutRecord,
  back: TaskRecord[],
  redriveCount: number,
  sweep: Record<string, string>,
): TxItem {
  // items an earlier redrive put back and no fill queued again (the run failed again first) had
  // their counts taken back then: taking them back again would leave the counters short
  const already = new Set(t.redo ?? []);
  const count = (status: string) =>
    back.filter((i) => i.status === status && !already.has(i.item as number)).length;
  return {
    Update: {
      TableName: config.tableName(),
      Key: keys.task(t.runId, t.task),
      UpdateExpression:
        "SET #status = :running, redo = :redo, putBack = :putBack, redriveCount = :count, version = :next, " +
        "failedItems = :failed, cancelledItems = :cancelled, sweepShard = :shard, sweepAt = :sweepAt " +
        "REMOVE #error, endedAt",
      // closes: putting items back while the task's counters moved (a late count, a second redrive)
      ConditionExpression: VERSION_FENCE,
      ExpressionAttributeNames: { "#status": "status", "#error": "error" },
      ExpressionAttributeValues: {
        ":running": "running",
        ":redo": back.map((i) => i.item as number),
        // the redrive each item belongs to from now: a late completion from before counts nothing (counted.ts)
        ":putBack": Object.fromEntries(back.map((i) => [String(i.item), redriveCount])),
        ":count": redriveCount,
        ":version": t.version,
        ":next": t.version + 1,
        ":failed": t.failedItems - count("failed"),
        ":cancelled": (t.cancelledItems ?? 0) - count("cancelled"),
        ...sweep,
      },
    },
  };
}

/** A with-items task whose items could not be evaluated starts afresh (advance evaluates them again). */
function fanOutRestart(t: FanOutRecord): TxItem {
  return {
    Delete: {
      TableName: config.tableName(),
      Key: keys.task(t.runId, t.task),
      // closes: deleting a task that moved since it was read
      ConditionExpression: VERSION_FENCE,
      ExpressionAttributeValues: { ":version": t.version },
    },
  };
}
