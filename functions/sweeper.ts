import { Logger } from "@aws-lambda-powertools/logger";
import middy from "@middy/core";
import type { ScheduledEvent } from "aws-lambda";
import { sweep } from "../lib/engine/sweep";

const logger = new Logger({ serviceName: "onceflow-sweeper" });

/** EventBridge schedule → re-send overdue executions' messages. */
export const handler = middy<ScheduledEvent, { resent: number }>(async () => {
  const resent = await sweep();
  if (resent > 0) logger.info("re-sent overdue executions", { resent });
  return { resent };
});
