/**
 * Countdowns: settled items counted down on their with-items task, exactly once each, in batches
 * of completions (fanout.ts has the item's timeline).
 */
import type { CompletionMessage } from "../queue";
import { type LostRace, lostRace, retryOnContention } from "../store/contention";
import { historyEvent } from "../store/events";
import { keys } from "../store/keys";
import { refusedAt, transact } from "../store/transaction";
import { countable, withCounted } from "./counted";
import { whileRunning } from "./dispatch";
import {
  failing,
  freeSlots,
  parentUpdate,
  queueItems,
  readParent,
  sendItems,
  slotsPerTransaction,
  takeItems,
  unqueued,
} from "./fill";
import { point } from "./interleave";
import type { FanOutRecord } from "./task-record";

/**
 * Tries of a countdown, twice the default: every countdown and fill of a with-items task writes its
 * parent (several advances at once: a run's completions are spread over a few FIFO groups), so the
 * parent is a hot item; and a countdown that gives up returns its whole batch of completions to
 * the queue (their visibility timeout) instead of counting them. About 14 s of backoff at most.
 */
const COUNTDOWN_TRIES = 20;

/**
 * The fewest free slots a countdown refills: a refill is a transaction with the parent and the
 * run's check (about 7 write units besides its items, whatever their number), so a task with many
 * slots refills them ten at a time rather than as each batch of completions frees a few. A slot
 * waits at most until nine more items finish; the last items (fewer than that left) and a task with
 * nothing active are refilled at once.
 */
const minRefill = (p: FanOutRecord) =>
  Math.min(Math.max(1, Math.min(10, Math.floor(p.concurrency / 10))), unqueued(p));

/**
 * What a countdown did:
 * - `ended`: it settled the parent (the graph must be evaluated);
 * - `counted`: it counted its items and refilled the slots they freed, in a transaction that also
 *   checked the run is running and within its deadline, and the parent is still running: nothing
 *   else of the run can have changed through it;
 * - `deferred`: it counted its items, on a parent still running with items active, and left the
 *   slots they freed for a later countdown (fewer than `minRefill`, or none left to fill): nothing
 *   of the run's graph changed, and the items still active bring the next countdown (a run cancelled
 *   or past its deadline meanwhile is wound down by its cancel, or by its look at the deadline);
 * - `other`: anything else (its items were counted already, the run or the parent is not running,
 *   a slot is left to fill): the caller looks at the whole run.
 */
export type CountDownResult = "ended" | "counted" | "deferred" | "other";

/**
 * Counts settled items down on their parent, exactly once each, refills the slots they free and,
 * when nothing is active and nothing is left (or the task failed for good), settles the parent.
 */
export async function countDown(
  runId: string,
  task: string,
  completions: CompletionMessage[],
  now = new Date(),
): Promise<CountDownResult> {
  const byItem = new Map<number, CompletionMessage>();
  for (const c of completions) {
    if (c.item !== undefined) byItem.set(c.item, c);
  }
  let todo = [...byItem.values()];
  if (todo.length === 0) return "other";
  let parent: FanOutRecord | undefined;
  /** The run is not running (or past its deadline): count the items, refill and end nothing. */
  let stopped = false;
  // contention on every try throws (ContentionError): never drop a count; failing leaves the
  // completions on the queue, to be counted later
  return retryOnContention(
    `count ${todo.length} item(s) of ${runId}/${task} down`,
    async (): Promise<CountDownResult | LostRace> => {
      parent ??= await readParent(runId, task);
      // a cancelled task still counts its running items' results, and starts nothing
      if (parent?.status !== "running" && parent?.status !== "cancelled") return "other";
      // a duplicate or redelivered completion finds its item counted, and a late one of an attempt from
      // before a redrive finds it put back: they count nothing, and write nothing (F1, I7)
      const current = parent;
      todo = todo.filter((c) => countable(current, c));
      if (todo.length === 0) return "other";
      const count = (outcome: CompletionMessage["outcome"]) =>
        todo.filter((c) => c.outcome === outcome).length;
      const counted: FanOutRecord = {
        ...parent,
        ...withCounted(
          parent,
          todo.map((c) => c.item as number),
        ),
        version: parent.version + 1,
        active: parent.active - todo.length,
        succeededItems: parent.succeededItems + count("succeeded"),
        failedItems: parent.failedItems + count("failed"),
        cancelledItems: (parent.cancelledItems ?? 0) + count("cancelled"),
      };
      // (the items counted are not written: only the parent is, so a refill may take a whole transaction's slots)
      const free = stopped ? 0 : freeSlots(counted);
      const refill = free >= minRefill(counted) ? Math.min(free, slotsPerTransaction(counted)) : 0;
      const { batch, after } = takeItems(counted, refill);
      const ended =
        !stopped &&
        parent.status === "running" &&
        after.active === 0 &&
        (failing(after) || unqueued(after) === 0);
      if (ended) {
        after.status = failing(after) ? "failed" : "succeeded";
        if (failing(after)) {
          after.error = {
            code: "ItemsFailed",
            message: `${after.failedItems} of ${after.total} items failed (${after.maxFailures} tolerated)`,
          };
        }
      }
      const dispatches = refill > 0 || ended;
      await point("countdown:before-commit", { runId, task, version: parent.version });
      const queued = await queueItems(parent, batch, now);
      const outcome = await transact([
        ...(dispatches ? [whileRunning(runId, now)] : []),
        parentUpdate(parent, after, now),
        ...queued.writes,
        ...(ended
          ? [
              historyEvent(runId, after.status === "succeeded" ? "TaskSucceeded" : "TaskFailed", {
                task,
                detail: {
                  succeeded: after.succeededItems,
                  failed: after.failedItems,
                  total: after.total,
                  error: after.error,
                },
              }),
            ]
          : []),
      ]);
      if (outcome.ok) {
        if (refill > 0) await sendItems(parent, queued);
        if (ended) return "ended";
        // `counted` only when the transaction checked that the run runs (and is within its deadline)
        if (dispatches) return parent.status === "running" && freeSlots(after) === 0 ? "counted" : "other";
        return !stopped && parent.status === "running" && after.active > 0 ? "deferred" : "other";
      }
      if (dispatches && refusedAt(outcome, keys.run(runId))) {
        // the run ended (or its deadline passed): count without refilling, on the parent as read
        // (the task keeps its status: a run past its deadline is timed out by advance, which cancels it)
        stopped = true;
        return lostRace(outcome.reasons);
      }
      // the parent moved (another handler counted, filled or cancelled): read it again, and drop what
      // it counted meanwhile
      parent = undefined;
      return lostRace(outcome.reasons);
    },
    // why twice the default: see COUNTDOWN_TRIES
    { tries: COUNTDOWN_TRIES },
  );
}
