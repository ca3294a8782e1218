import { config } from "../config";
import { eventPut } from "../store/events";
import { keys } from "../store/keys";
import { transact } from "../store/transaction";
import type { ErrorInfo } from "./task-record";

/** A run's output is stored on the run's item, which must stay under 400 KB. */
export const MAX_RUN_OUTPUT_BYTES = 128 * 1024;

/**
 * The run's terminal transition, once: conditional on `running`, so of two handlers that both saw
 * the last execution settle (or a sweeper timing the run out meanwhile) one ends it. Returns
 * whether this call ended it.
 */
export async function endRun(
  runId: string,
  status: "succeeded" | "failed",
  output: unknown,
  error?: ErrorInfo & { task?: string },
): Promise<boolean> {
  const size = Buffer.byteLength(JSON.stringify(output ?? null));
  if (!error && size > MAX_RUN_OUTPUT_BYTES) {
    return endRun(runId, "failed", null, {
      code: "OutputTooLarge",
      message: `the run output is ${size} bytes, over ${MAX_RUN_OUTPUT_BYTES}`,
    });
  }
  const outcome = await transact([
    {
      Update: {
        TableName: config.tableName(),
        Key: keys.run(runId),
        UpdateExpression: error
          ? "SET #status = :status, #error = :error, endedAt = :now REMOVE sweepShard, sweepAt"
          : "SET #status = :status, #output = :output, endedAt = :now REMOVE sweepShard, sweepAt",
        // closes: two handlers (or a handler and the sweeper) ending the run twice
        ConditionExpression: "#status = :running",
        ExpressionAttributeNames: error
          ? { "#status": "status", "#error": "error" }
          : { "#status": "status", "#output": "output" },
        ExpressionAttributeValues: {
          ":status": error ? "failed" : status,
          ":running": "running",
          ":now": new Date().toISOString(),
          ...(error ? { ":error": error } : { ":output": output ?? null }),
        },
      },
    },
    eventPut(runId, error || status === "failed" ? "RunFailed" : "RunSucceeded", {
      detail: error ? { error } : undefined,
    }),
  ]);
  return outcome.ok;
}
