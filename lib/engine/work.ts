import { CALLBACK_ACTION } from "../definition/callback";
import { type CompletionMessage, completionOf, sendCompletion, type TaskMessage } from "../queue";
import { advance } from "./advance";
import { runAttempt } from "./attempt";
import { issue, renotify } from "./callback";
import { claim } from "./claim";
import type { OnRenew } from "./lease";
import { type AttemptResult, settle } from "./settle";
import type { TaskRecord } from "./task-record";

/** What the worker adapter should do with the message: delete it, or let it come back later. */
export type WorkOutcome = { done: true } | { done: false; retryAfterSeconds: number };

/**
 * Handles one task message, re-entrant at every step: claim (conditional), run the action, record
 * the result (conditional on the attempt), publish the completion (a plain task's by advancing the
 * run here). A message that arrives again after the result was recorded only publishes the
 * completion again (same dedup id; an advance repeated writes nothing). A
 * `core.callback` attempt runs no action: it waits for its callback (callback.ts), which records
 * the result and publishes the completion.
 */
export async function work(message: TaskMessage, workerId: string, onRenew?: OnRenew): Promise<WorkOutcome> {
  const claimed = await claim(message, workerId);
  switch (claimed.kind) {
    case "gone":
    case "parked":
      return { done: true };
    case "wait":
      return { done: false, retryAfterSeconds: claimed.seconds };
    case "settled": {
      // the worker that settled it may have died before publishing: publish again (SQS dedups,
      // and advancing a run again writes nothing)
      const { record } = claimed;
      await publish(completionOf(record, record.status as CompletionMessage["outcome"]));
      return { done: true };
    }
    case "suspended":
      return record(claimed.record, await renotify(claimed.record));
    case "claimed": {
      const claimedRecord = claimed.record;
      const result =
        claimedRecord.action === CALLBACK_ACTION
          ? await issue(claimedRecord)
          : await runAttempt(claimedRecord, onRenew);
      return record(claimedRecord, result);
    }
  }
}

/** Records an attempt's result and publishes its completion; undefined: nothing to record (a callback waits). */
async function record(claimed: TaskRecord, result: AttemptResult | undefined): Promise<WorkOutcome> {
  if (result === undefined) return { done: true };
  const outcome = await settle(claimed, result);
  if (outcome.kind === "retry") return { done: false, retryAfterSeconds: outcome.seconds };
  if (outcome.kind === "lost") return { done: true };
  await publish(completionOf(claimed, outcome.kind));
  return { done: true };
}

/**
 * Publishes the completion of a settled execution. An item's goes to the completions queue, where
 * the items of a with-items task are counted down in batches. A plain task's is acted on here: the
 * worker advances the run itself, with the same conditional writes as the advance handler. Its
 * task message stays on the queue until this returns, so a worker that dies before (or while)
 * advancing leaves the message to come back, find the execution settled, and advance again.
 */
async function publish(completion: CompletionMessage): Promise<void> {
  if (completion.item === undefined) await advance(completion.runId, [completion]);
  else await sendCompletion(completion);
}
