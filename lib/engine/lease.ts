import { config } from "../config";
import { ActionError } from "../errors";
import { updateIf } from "../store/conditional";
import { keys } from "../store/keys";
import { addSeconds, leaseSeconds, type TaskRecord } from "./task-record";

/** Called after each renewal, e.g. to keep the SQS message invisible as long as the lease. */
export type OnRenew = (seconds: number) => Promise<void>;

/**
 * Keeps the lease of a running attempt alive while its action runs: every third of the lease it
 * moves `leaseUntil` forward, conditional on this worker still holding this attempt. When the
 * renewal fails the lease was lost (the worker was too slow, the attempt was taken over), and the
 * action is aborted with `LeaseLost`: a zombie stops its work early, and its result write would be
 * refused anyway (fencing, I8). Returns a function that stops the heartbeat.
 */
export function keepLease(record: TaskRecord, controller: AbortController, onRenew?: OnRenew): () => void {
  const seconds = leaseSeconds(record);
  const renew = async () => {
    const leaseUntil = addSeconds(new Date(), seconds).toISOString();
    let renewed: boolean;
    try {
      renewed = await updateIf({
        TableName: config.tableName(),
        Key: keys.execution(record),
        // only the lease: the sweeper reads it when it looks (sweep.ts), so a beat costs no index write
        UpdateExpression: "SET leaseUntil = :lease",
        // closes: a worker whose lease expired (and was taken over) extending the new attempt's lease
        ConditionExpression: "#status = :running AND attempt = :attempt AND workerId = :worker",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":lease": leaseUntil,
          ":running": "running",
          ":attempt": record.attempt,
          ":worker": record.workerId,
        },
      });
      if (renewed) await onRenew?.(seconds);
    } catch {
      return; // try again at the next beat
    }
    if (!renewed) {
      controller.abort(
        new ActionError("LeaseLost", `attempt ${record.attempt} lost its lease`, { retryable: true }),
      );
    }
  };
  return every(() => void renew(), (seconds * 1000) / 3);
}

/** Calls `beat` every `ms` until the returned function is called. */
type Every = (beat: () => void, ms: number) => () => void;

let every: Every = (beat, ms) => {
  const timer = setInterval(beat, ms);
  return () => clearInterval(timer);
};

/**
 * For the deterministic simulation: its virtual clock and its schedule decide what happens when,
 * so a heartbeat there must not fire on the machine's time (its workers hold no lease alive: a
 * stalled one loses it). Returns a function that puts the real timer back.
 */
export function useHeartbeats(next: Every): () => void {
  const previous = every;
  every = next;
  return () => {
    every = previous;
  };
}
