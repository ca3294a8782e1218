import { config } from "../config";
import { lostRace, retryOnContention } from "../store/contention";
import { historyEvent } from "../store/events";
import { keys } from "../store/keys";
import type { RunRecord } from "../store/run-state";
import { refusedAt, transact } from "../store/transaction";
import { point } from "./interleave";
import { type Promoted, release } from "./lock";
import { type ErrorInfo, sweepValues } from "./task-record";

/**
 * The end's guard that a test takes away (test/integration/redrive.test.ts): the fence on the
 * redrive count the handler read. Never changed outside tests.
 */
export const endRunGuards = { redrives: true };

/** A run's output is stored on the run's item, which must stay under 400 KB. */
export const MAX_RUN_OUTPUT_BYTES = 128 * 1024;

export interface Ending {
  /** Whether this call ended the run. */
  ended: boolean;
  /** The waiting run that got the run's concurrency-key lock, to be launched by the caller. */
  promoted?: Promoted;
}

/**
 * The run's terminal transition, once: conditional on `running`, so of two handlers that both saw
 * the last execution settle (or a sweeper timing the run out meanwhile) one ends it. Its
 * concurrency-key lock is given back in the same transaction, to the oldest waiting run (I5),
 * unless `keepLock` (actions may still be running: `windDown` gives it back once they ended).
 */
export async function endRun(
  run: RunRecord,
  status: "succeeded" | "failed",
  output: unknown,
  error?: ErrorInfo & { task?: string },
  options: { keepLock?: boolean } = {},
  now = new Date(),
): Promise<Ending> {
  const size = Buffer.byteLength(JSON.stringify(output ?? null));
  if (!error && size > MAX_RUN_OUTPUT_BYTES) {
    return endRun(run, "failed", null, {
      code: "OutputTooLarge",
      message: `the run output is ${size} bytes, over ${MAX_RUN_OUTPUT_BYTES}`,
    });
  }
  // the lock moving on every try throws (ContentionError), as it threw before: the run stays
  // running, and the message that asked for the end (or the sweeper's next look) ends it later
  return retryOnContention(`end run ${run.runId} (its concurrency-key lock kept moving)`, async () => {
    // a run timed out may still have actions running: its lock waits for them (see windDown)
    const lock = options.keepLock ? undefined : await release(run, now);
    // a run that keeps its lock (actions may still run) stays in the sweeper's index until they ended
    const sweep = lookKept(run, options.keepLock ?? false, now);
    const fence = run.redriveCount ? "redriveCount = :redrives" : "attribute_not_exists(redriveCount)";
    await point("end-run:before-write", { runId: run.runId, status });
    const outcome = await transact([
      {
        Update: {
          TableName: config.tableName(),
          Key: keys.run(run.runId),
          UpdateExpression: `SET #status = :status, ${error ? "#error = :error" : "#output = :output"}, endedAt = :now${sweep.update}`,
          // closes: two handlers (or a handler and the sweeper) ending the run twice, and a handler that
          // read the run before it failed and was redriven ending the redriven run
          ConditionExpression: endRunGuards.redrives
            ? `#status = :running AND ${fence}`
            : "#status = :running",
          ExpressionAttributeNames: error
            ? { "#status": "status", "#error": "error" }
            : { "#status": "status", "#output": "output" },
          ExpressionAttributeValues: {
            ":status": error ? "failed" : status,
            ":running": "running",
            ":now": now.toISOString(),
            ...(error ? { ":error": error } : { ":output": output ?? null }),
            ...(run.redriveCount && endRunGuards.redrives ? { ":redrives": run.redriveCount } : {}),
            ...sweep.values,
          },
        },
      },
      historyEvent(run.runId, error || status === "failed" ? "RunFailed" : "RunSucceeded", {
        detail: error ? { error } : undefined,
      }),
      ...(lock?.writes ?? []),
    ]);
    await point("end-run:after-write", { runId: run.runId, ended: outcome.ok });
    if (outcome.ok) return { ended: true, promoted: lock?.promoted };
    if (refusedAt(outcome, keys.run(run.runId))) return { ended: false };
    // the lock moved (a run joined its queue): read it again
    return lostRace(outcome.reasons);
  });
}

/**
 * How a run's terminal update treats its place in the sweeper's index: removed, or, when the run
 * ends while actions may still run (cancelled, timed out), kept for a look soon: the look winds
 * the run down (cancels what nobody works on, a lease that ended included), gives its
 * concurrency-key lock back, and takes it out of the index once nothing runs (lock.ts).
 */
export function lookKept(
  run: RunRecord,
  busy: boolean,
  now: Date,
): { update: string; values: Record<string, unknown> } {
  if (!busy) return { update: " REMOVE sweepShard, sweepAt", values: {} };
  return {
    update: ", sweepShard = :shard, sweepAt = :sweepAt",
    values: sweepValues(run.runId, now),
  };
}
