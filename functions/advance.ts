import { processPartialResponse, SqsFifoPartialProcessorAsync } from "@aws-lambda-powertools/batch";
import { Logger } from "@aws-lambda-powertools/logger";
import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { config } from "../lib/config";
import { advanceOn } from "../lib/engine/advance";
import type { AdvanceMessage } from "../lib/queue";
import { retrySoon } from "./visibility";

const logger = new Logger({ serviceName: "onceflow-advance" });

/**
 * completions.fifo → count items down, evaluate the run's graph, dispatch successors or end the
 * run; and the sweeper's looks at running runs. Every message in a batch was published before the
 * batch was received, so one advance per run per batch, given all of that run's messages, sees
 * them all.
 */
async function advanceBatch(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const advanced = new Set<string>();
  const messages = event.Records.map((r) => JSON.parse(r.body) as AdvanceMessage);
  return processPartialResponse(
    event,
    async (record: SQSRecord) => {
      const { runId } = JSON.parse(record.body) as AdvanceMessage;
      if (advanced.has(runId)) return;
      await advanceOn(
        runId,
        messages.filter((m) => m.runId === runId),
      ).catch(async (error: unknown) => {
        logger.error("completion failed; SQS will deliver it again shortly", {
          runId,
          error: error as Error,
        });
        await retrySoon(config.completionsQueueUrl(), record, event.Records);
        throw error;
      });
      advanced.add(runId);
    },
    // one processor per invocation: it keeps the batch's state, and the local stack runs invocations side by side
    new SqsFifoPartialProcessorAsync(),
    { context, skipGroupOnError: true, throwOnFullBatchFailure: false },
  );
}

export const handler = middy(advanceBatch);
