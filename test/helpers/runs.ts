import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { isOnceflowError, type RunEvent } from "../../lib/client";
import { sqs } from "../../lib/clients";
import { type RunRecord, readRun } from "../../lib/store/run-state";
import type { LocalStackFixture } from "./stack";

/**
 * Waits until the queue holds no message, visible or in flight: every message sent to it was
 * handled (and deleted) by the stack's pollers. The positive signal that a message which could
 * have changed something had its chance, instead of a sleep.
 */
export async function waitForQueueDrained(queueUrl: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { Attributes = {} } = await sqs().send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    const left =
      Number(Attributes.ApproximateNumberOfMessages) +
      Number(Attributes.ApproximateNumberOfMessagesNotVisible);
    if (left === 0) return;
    if (Date.now() > deadline) throw new Error(`${queueUrl} still holds ${left} message(s)`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Polls the run (`client.getRun`, every 100 ms) until it has ended, or until `until` holds, and
 * returns it. Throws with the run as last seen when it does not get there in `timeoutMs`.
 */
export async function waitForRun(
  stack: LocalStackFixture,
  runId: string,
  // biome-ignore lint/suspicious/noExplicitAny: tests read run bodies freely.
  until?: (run: any) => boolean,
  timeoutMs = 30_000,
  // biome-ignore lint/suspicious/noExplicitAny: tests read run bodies freely.
): Promise<any> {
  const late = (run: unknown) => new Error(`run ${runId} did not get there in time: ${JSON.stringify(run)}`);
  if (!until)
    return stack.client.waitForRun(runId, { timeoutMs, intervalMs: 100 }).catch((error: unknown) => {
      throw isOnceflowError(error, "WaitTimedOut") ? late(error.fields.run) : error;
    });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await stack.client.getRun(runId);
    if (until(run)) return run;
    if (Date.now() > deadline) throw late(run);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Polls the run's record in the table (every 50 ms) until `until` holds, and returns it. */
export async function waitForRunRecord(
  runId: string,
  until: (run: RunRecord) => boolean,
  timeoutMs = 30_000,
): Promise<RunRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await readRun(runId);
    if (run && until(run)) return run;
    if (Date.now() > deadline)
      throw new Error(`run ${runId}'s record did not get there in time: ${JSON.stringify(run)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Registers a definition (an object, sent as JSON); an invalid one throws. Returns its version. */
export async function register(
  stack: LocalStackFixture,
  definition: { name: string; [key: string]: unknown },
): Promise<number> {
  return (await stack.client.putWorkflow(definition.name, definition)).version;
}

/** One entry of `GET /runs/{id}/events`, with the error of its detail typed. */
export type RunEventView = Omit<RunEvent, "detail"> & {
  detail?: { error?: { code: string; message: string } } & Record<string, unknown>;
};

/** The run's history, from the API. */
export async function eventsOf(stack: LocalStackFixture, runId: string): Promise<RunEventView[]> {
  return (await stack.client.getEvents(runId)) as RunEventView[];
}
