import { processPartialResponse, SqsFifoPartialProcessorAsync } from "@aws-lambda-powertools/batch";
import type { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { retrySoon } from "./visibility";

export interface FifoBatchOptions {
  logger: Logger;
  /** The queue the batch came from (a failed record is made visible again soon on it). */
  queueUrl: () => string;
  /** Logged with the error when a record's handling fails unexpectedly. */
  failure: string;
  /** What a failed record's log line carries besides the error. */
  describe: (record: SQSRecord) => Record<string, unknown>;
  /**
   * The record handler for one batch (its state, if any, lives in the closure). Throwing leaves the
   * record, and the later records of its message group, for SQS to deliver again.
   */
  forBatch: (event: SQSEvent, context: Context) => (record: SQSRecord) => Promise<void>;
  /** Errors that are an answer, not a failure (no log line, no early retry): e.g. "not claimable yet". */
  expected?: (error: unknown) => boolean;
}

/**
 * A Lambda handler for a FIFO queue's batches (the worker's and advance's): records in order
 * within a message group, groups side by side; a record that fails is reported in
 * `batchItemFailures` with the rest of its group, logged, and made visible again within seconds
 * (visibility.ts) instead of after the queue's visibility timeout. Logs carry the invocation's
 * request id (Powertools' `injectLambdaContext`).
 */
export function fifoBatchHandler(options: FifoBatchOptions) {
  const { logger } = options;
  const handle = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    const handleRecord = options.forBatch(event, context);
    return processPartialResponse(
      event,
      (record: SQSRecord) =>
        handleRecord(record).catch(async (error: unknown) => {
          if (!options.expected?.(error)) {
            logger.error(options.failure, { ...options.describe(record), error: error as Error });
            await retrySoon(options.queueUrl(), record, event.Records);
          }
          throw error;
        }),
      // one processor per invocation: it holds the batch's state, and the local stack runs invocations side by side
      new SqsFifoPartialProcessorAsync(),
      { context, skipGroupOnError: true, throwOnFullBatchFailure: false },
    );
  };
  return middy(handle).use(injectLambdaContext(logger));
}
