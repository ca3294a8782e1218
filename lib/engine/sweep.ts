import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { db } from "../clients";
import { config } from "../config";
import { sendLooks, sendTasks } from "../queue";
import { updateIf } from "../store/conditional";
import { type Key, keys } from "../store/keys";
import { type RunRecord, readItem } from "../store/run-state";
import { isCounted } from "./counted";
import { isSettled } from "./evaluate";
import {
  addSeconds,
  type FanOutRecord,
  QUEUED_SWEEP_SECONDS,
  SWEEP_SHARDS,
  type TaskRecord,
} from "./task-record";

/** Overdue items read per shard in one pass; the rest wait for the next pass, seconds later. */
const PAGE = 100;
/** Overdue items handled at once: each is independent, so one that fails or hangs holds up no other. */
const CONCURRENCY = 8;
/** How often a with-items task with items out is looked at (lookEverySeconds). */
const ITEMS_LOOK_SECONDS = 10;
/** A pass starts no new item after this long, so that it ends well within the sweeper's timeout. */
const PASS_BUDGET_MS = 4000;

export interface SweepResult {
  /** Overdue items acted on: a task message re-sent, or a look sent to `advance`. */
  acted: number;
  /** Items found overdue (some may have been taken care of by another sweeper or the engine). */
  overdue: number;
  /** Items whose handling failed (left for the next pass), with the first error. */
  failed: number;
  firstError?: unknown;
}

/**
 * One pass over what is overdue, found through the sparse `sweep` index (never a table scan):
 * - running runs and with-items tasks (and those that ended with something still to settle),
 *   looked at every 20 s (10 s for a with-items task with items out), at the run's deadline, and
 *   when a look saw a lease or retry fall due sooner: a look goes to `advance` (through the
 *   completions queue, in a group of its own), which times the run out, finishes what a crash left
 *   undone, and acts for the executions under it: executions are in no index; the look re-sends
 *   those overdue and counts items whose completion was lost (look.ts);
 * - executions put in the index before that (queued but never claimed, waiting for a retry whose
 *   message is gone, running with an expired lease): their task message is sent again, in a FIFO
 *   group of its own, and the worker's conditional claim decides what happens; one whose lease is
 *   still alive is looked at again at the lease's end.
 * The shards are read at once and the overdue items handled concurrently, the longest overdue
 * first, each on its own: a sweeper that dies loses only the items in hand, which the next pass
 * (seconds later, tick.ts) finds again, and the items it did not reach come first there. Each
 * item's message is sent before its next look is postponed, with a dedup id from the `sweepAt`
 * seen, so a sweeper that dies between the two, or two that race, send it once.
 */
export async function sweep(now = new Date()): Promise<SweepResult> {
  const started = performance.now();
  const pages = await Promise.all(
    Array.from({ length: SWEEP_SHARDS }, (_, shard) =>
      db()
        .send(
          new QueryCommand({
            TableName: config.tableName(),
            IndexName: "sweep",
            KeyConditionExpression: "sweepShard = :shard AND sweepAt <= :now",
            ExpressionAttributeValues: { ":shard": String(shard), ":now": now.toISOString() },
            Limit: PAGE,
          }),
        )
        // the index gives each item's key and its own keys (sweepShard, sweepAt)
        .then(({ Items = [] }) =>
          Items.map((i) => ({ key: { pk: i.pk as string, sk: i.sk as string }, due: i.sweepAt as string })),
        ),
    ),
  );
  // the longest overdue first, whatever its shard: a pass cut short (a sweeper that died, the
  // budget) leaves the most recently due for the next one, and none waits behind a shard's backlog
  const overdue = pages
    .flat()
    .sort((a, b) => a.due.localeCompare(b.due))
    .map((entry) => entry.key);
  const result: SweepResult = { acted: 0, overdue: overdue.length, failed: 0 };
  let next = 0;
  const lane = async () => {
    while (next < overdue.length && performance.now() - started < PASS_BUDGET_MS) {
      const entry = overdue[next++] as Key;
      try {
        if (await actOn(entry, now)) result.acted++;
      } catch (error) {
        // one item failing (a throttled call, a lost race) is retried by the next pass; it stops no other
        result.failed++;
        result.firstError ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return result;
}

async function actOn(key: Key, now: Date): Promise<boolean> {
  const record = await readItem<(TaskRecord & { fanOut?: true }) | RunRecord>(key);
  if (!record?.sweepAt || record.sweepAt > now.toISOString()) return false;
  const seen = record.sweepAt;
  const execution = record as TaskRecord;
  if (execution.item !== undefined && isSettled(execution.status)) {
    // an item put in the index before items were looked at through their task (look.ts): a cancelled
    // one waited there until its completion was counted; once it is, it leaves the index
    const parent = await readItem<FanOutRecord>(keys.task(execution.runId, execution.task));
    if (parent && isCounted(parent, execution.item)) return leave(key, seen);
  }
  if (execution.status === "running" && execution.leaseUntil && execution.leaseUntil > now.toISOString()) {
    // its worker holds a live lease (claims and heartbeats leave sweepAt alone): look again when
    // the lease ends, and send nothing now
    await postpone(key, seen, execution.leaseUntil);
    return false;
  }
  if (key.sk === "RUN" || "fanOut" in record) {
    // a running run (or with-items task) looked at again: times out, or heals what a crash left
    await sendLooks(
      [{ look: true, runId: record.runId, ...("fanOut" in record ? { task: execution.task } : {}) }],
      seen,
    );
  } else {
    const { runId, task, item, attempt } = execution;
    await sendTasks([{ runId, task, item, ...(attempt ? { attempt } : {}) }], seen);
  }
  const deadline = "deadline" in record ? record.deadline : undefined;
  const later = addSeconds(now, lookEverySeconds(record)).toISOString();
  await postpone(key, seen, deadline && deadline > now.toISOString() && deadline < later ? deadline : later);
  return true;
}

/**
 * How soon a run or with-items task is looked at again. A with-items task with items out is looked
 * at every ITEMS_LOOK_SECONDS: its looks are what count an item whose completion was lost (a worker
 * or an advance that died), and a look that dies itself (it is one more message of an advance
 * batch) costs its task that long. Anything else every QUEUED_SWEEP_SECONDS, sooner when a look
 * saw a lease or a retry fall due sooner (look.ts).
 */
function lookEverySeconds(record: object): number {
  return "fanOut" in record && (record as FanOutRecord).active > 0
    ? ITEMS_LOOK_SECONDS
    : QUEUED_SWEEP_SECONDS;
}

/** Takes a counted item out of the sweeper's index. */
async function leave(key: Key, seen: string): Promise<false> {
  await updateIf({
    TableName: config.tableName(),
    Key: key,
    UpdateExpression: "REMOVE sweepShard, sweepAt",
    // closes: taking out an item that a redrive put back in the index meanwhile (to be queued again)
    ConditionExpression: "sweepAt = :seen",
    ExpressionAttributeValues: { ":seen": seen },
  });
  return false;
}

/** Moves the item's next look forward; false when another sweeper (or the engine) moved it first. */
function postpone(key: Key, seen: string, next: string): Promise<boolean> {
  return updateIf({
    TableName: config.tableName(),
    Key: key,
    UpdateExpression: "SET sweepAt = :next",
    // closes: moving back the next look that the engine (a claim, a heartbeat, a settle) set after
    // this sweeper read the item, and two sweepers postponing the same look twice
    ConditionExpression: "sweepAt = :seen",
    ExpressionAttributeValues: {
      ":seen": seen,
      ":next": next,
    },
  });
}
