import { CALLBACK_ACTION } from "../definition/callback";
import { type CompletionMessage, completionOf, sendCompletion, sendTasks, type TaskMessage } from "../queue";
import { advance } from "./advance";
import { runAttempt } from "./attempt";
import { issue, renotify } from "./callback";
import { claim } from "./claim";
import { point } from "./interleave";
import type { OnRenew } from "./lease";
import { type AttemptResult, type SettleOutcome, settle } from "./settle";
import { DEFAULT_TIMEOUT_SECONDS, type TaskRecord } from "./task-record";

/** What the worker adapter should do with the message: delete it, or let it come back later. */
export type WorkOutcome = { done: true } | { done: false; retryAfterSeconds: number };

export interface WorkOptions {
  /** Called as the lease is renewed, with its length (the adapter keeps the message hidden as long). */
  onRenew?: OnRenew;
  /**
   * Whether this worker has time left to run a task with a timeout of `timeoutSeconds` itself (the
   * adapter knows its invocation's time). Absent: never, and every successor's message is sent.
   */
  roomFor?: (timeoutSeconds: number) => boolean;
}

/** One message's handling: the outcome for its message, and a successor held for this worker to run. */
interface Handled {
  outcome: WorkOutcome;
  next?: TaskMessage;
}

/**
 * Handles one task message, re-entrant at every step: claim (conditional), run the action, record
 * the result (conditional on the attempt), publish the completion (a plain task's by advancing the
 * run here). A message that arrives again after the result was recorded only publishes the
 * completion again (same dedup id; an advance repeated writes nothing). A
 * `core.callback` attempt runs no action: it waits for its callback (callback.ts), which records
 * the result and publishes the completion.
 *
 * A plain task's advance may make successors ready: while `roomFor` says this worker has time for
 * one, it runs it itself (a continuation: its message, held back, goes through the same claim as
 * any other), and sends the others. A chain of tasks then costs no queue hop and no invocation per
 * task. The held message is sent after all when there is no time for it, or its claim answers
 * "not yet"; lost with a worker that died, it is sent again by the run's look, as any lost message.
 */
export async function work(
  message: TaskMessage,
  workerId: string,
  options: WorkOptions = {},
): Promise<WorkOutcome> {
  const { outcome, next: first } = await handle(message, workerId, options.onRenew);
  let next = first;
  while (next) {
    const timeoutSeconds = next.queued?.execution.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
    if (!options.roomFor?.(timeoutSeconds)) break;
    await point("work:continue", { runId: next.runId, task: next.task, item: next.item });
    const continued = await handle(next, workerId, options.onRenew).catch(async (error: unknown) => {
      // an error, not a death: its message goes out after all, then this one comes back
      await sendTasks([next as TaskMessage]);
      throw error;
    });
    if (!continued.outcome.done) break;
    next = continued.next;
  }
  if (next) await sendTasks([next]);
  return outcome;
}

async function handle(message: TaskMessage, workerId: string, onRenew?: OnRenew): Promise<Handled> {
  const claimed = await claim(message, workerId);
  switch (claimed.kind) {
    case "gone":
    case "parked":
      return { outcome: { done: true } };
    case "wait":
      return { outcome: { done: false, retryAfterSeconds: claimed.seconds } };
    case "settled": {
      // the worker that settled it may have died before publishing: publish again (SQS dedups,
      // and advancing a run again writes nothing)
      const { record } = claimed;
      const next = await publish(completionOf(record, record.status as CompletionMessage["outcome"]));
      return { outcome: { done: true }, next };
    }
    case "suspended":
      return record(claimed.record, await renotify(claimed.record));
    case "claimed": {
      const claimedRecord = claimed.record;
      if (claimedRecord.action === CALLBACK_ACTION) return record(claimedRecord, await issue(claimedRecord));
      // the result is written while the lease is still kept (attempt.ts)
      const settled = await runAttempt(claimedRecord, onRenew, (result) => settle(claimedRecord, result));
      return recorded(claimedRecord, settled);
    }
  }
}

/** Records an attempt's result and publishes its completion; undefined: nothing to record (a callback waits). */
async function record(claimed: TaskRecord, result: AttemptResult | undefined): Promise<Handled> {
  if (result === undefined) return { outcome: { done: true } };
  return recorded(claimed, await settle(claimed, result));
}

/** What follows a recorded result: a retry's wait, or its completion published. */
async function recorded(claimed: TaskRecord, outcome: SettleOutcome): Promise<Handled> {
  if (outcome.kind === "retry") return { outcome: { done: false, retryAfterSeconds: outcome.seconds } };
  if (outcome.kind === "lost") return { outcome: { done: true } };
  return { outcome: { done: true }, next: await publish(completionOf(claimed, outcome.kind)) };
}

/**
 * Publishes the completion of a settled execution. An item's goes to the completions queue, where
 * the items of a with-items task are counted down in batches. A plain task's is acted on here: the
 * worker advances the run itself, with the same conditional writes as the advance handler, and
 * holds back the message of one successor that advance made ready (returned). Its task message
 * stays on the queue until the handler returns, so a worker that dies before (or while) advancing
 * leaves the message to come back, find the execution settled, and advance again.
 */
async function publish(completion: CompletionMessage): Promise<TaskMessage | undefined> {
  if (completion.item !== undefined) {
    await sendCompletion(completion);
    return undefined;
  }
  const advanced = await advance(completion.runId, [completion], new Date(), { hold: true });
  return advanced.kind === "dispatched" ? advanced.held : undefined;
}
