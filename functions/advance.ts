import { Logger } from "@aws-lambda-powertools/logger";
import type { SQSEvent, SQSRecord } from "aws-lambda";
import { config } from "../lib/config";
import { advanceOn } from "../lib/engine/advance";
import type { AdvanceMessage } from "../lib/queue";
import { fifoBatchHandler } from "./fifo-batch";

/**
 * completions.fifo → count items down, evaluate the run's graph, dispatch successors or end the
 * run; and the sweeper's looks at running runs. Every message in a batch was published before the
 * batch was received, so one advance per run per batch, given all of that run's messages, sees
 * them all.
 */
function advanceBatch(event: SQSEvent): (record: SQSRecord) => Promise<void> {
  const advanced = new Set<string>();
  const messages = event.Records.map((r) => JSON.parse(r.body) as AdvanceMessage);
  return async (record) => {
    const { runId } = JSON.parse(record.body) as AdvanceMessage;
    if (advanced.has(runId)) return;
    await advanceOn(
      runId,
      messages.filter((m) => m.runId === runId),
    );
    advanced.add(runId);
  };
}

export const handler = fifoBatchHandler({
  logger: new Logger({ serviceName: "onceflow-advance" }),
  queueUrl: config.completionsQueueUrl,
  failure: "completion failed; SQS will deliver it again shortly",
  describe: (record) => ({ runId: (JSON.parse(record.body) as AdvanceMessage).runId }),
  forBatch: advanceBatch,
});
