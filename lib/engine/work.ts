import { type CompletionMessage, sendCompletion, type TaskMessage } from "../queue";
import { runAttempt } from "./attempt";
import { claim } from "./claim";
import type { OnRenew } from "./lease";
import { settle } from "./settle";
import type { TaskRecord } from "./task-record";

/** What the worker adapter should do with the message: delete it, or let it come back later. */
export type WorkOutcome = { done: true } | { done: false; retryAfterSeconds: number };

/**
 * Handles one task message, re-entrant at every step: claim (conditional), run the action, record
 * the result (conditional on the attempt), publish one completion. A message that arrives again
 * after the result was recorded only publishes the completion again (same dedup id).
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
      // the worker that settled it may have died before publishing: publish again (SQS dedups)
      const { record } = claimed;
      await sendCompletion(completionOf(record, record.status as CompletionMessage["outcome"]));
      return { done: true };
    }
    case "claimed": {
      const record = claimed.record;
      const outcome = await settle(record, await runAttempt(record, onRenew));
      if (outcome.kind === "retry") return { done: false, retryAfterSeconds: outcome.seconds };
      if (outcome.kind === "lost") return { done: true };
      await sendCompletion(completionOf(record, outcome.kind));
      return { done: true };
    }
  }
}

const completionOf = (record: TaskRecord, outcome: CompletionMessage["outcome"]): CompletionMessage => ({
  runId: record.runId,
  task: record.task,
  item: record.item,
  attempt: record.attempt,
  outcome,
});
