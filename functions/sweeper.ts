import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { ScheduledEvent, SQSEvent } from "aws-lambda";
import type { SweepResult } from "../lib/engine/sweep";
import { kick, onTick, type Tick } from "../lib/engine/tick";

const logger = new Logger({ serviceName: "onceflow-sweeper" });

/** The tick a record carries; undefined when it carries none (a kick). */
function dueOf(event: SQSEvent): string | undefined {
  try {
    const { due } = JSON.parse(event.Records[0]?.body ?? "{}") as Tick;
    return typeof due === "string" ? due : undefined;
  } catch {
    return undefined;
  }
}

type Answer = Omit<SweepResult, "firstError"> | { skipped: true } | { kicked: true };

/**
 * The once-a-minute schedule → a kick on the sweep queue (tick.ts), nothing swept here. A tick
 * from the sweep queue (batch size 1) → one sweep pass: re-send overdue executions' messages, send
 * looks at running runs. A failure leaves the tick to come back after the queue's visibility
 * timeout.
 */
export const handler = middy<ScheduledEvent | SQSEvent, Answer>(async (event: ScheduledEvent | SQSEvent) => {
  if (!("Records" in event)) {
    await kick();
    return { kicked: true as const };
  }
  const result = await onTick(dueOf(event));
  if (!result) return { skipped: true as const };
  const { firstError, ...counts } = result;
  if (counts.failed > 0)
    logger.error("some overdue items failed; the next pass takes them again", {
      ...counts,
      error: firstError as Error,
    });
  else if (counts.acted > 0) logger.info("acted on overdue items", counts);
  return counts;
}).use(injectLambdaContext(logger));
