/**
 * Task messages captured on their way to SQS and never delivered (and every other message
 * dropped): for tests that decide themselves which copy of a message reaches which handler, and
 * when.
 */
import { afterEach, beforeEach } from "vitest";
import { sqs } from "../../lib/clients";
import type { TaskMessage } from "../../lib/queue";

/**
 * Captures every task message sent during each test of the file; `sent()` is this test's so far,
 * `messageOf(runId, task?)` the first of them for that run (and task).
 */
export function captureTaskMessages(): {
  sent: () => TaskMessage[];
  messageOf: (runId: string, task?: string) => TaskMessage;
  clear: () => void;
} {
  let sent: TaskMessage[] = [];
  beforeEach(() => {
    sent = [];
    const capture = () => async (args: unknown) => {
      const input = (args as { input: { QueueUrl?: string; Entries?: Record<string, string>[] } }).input;
      if (!input.QueueUrl?.includes("tasks")) return { output: {}, response: {} };
      for (const e of input.Entries ?? []) sent.push(JSON.parse(e.MessageBody ?? "{}"));
      return { output: { Successful: [], Failed: [] }, response: {} };
    };
    sqs().middlewareStack.add(capture as never, { step: "initialize", name: "captureTaskMessages" });
  });
  afterEach(() => {
    sqs().middlewareStack.remove("captureTaskMessages");
  });
  return {
    sent: () => sent,
    messageOf: (runId, task) =>
      sent.find((m) => m.runId === runId && (task === undefined || m.task === task)) as TaskMessage,
    clear: () => {
      sent = [];
    },
  };
}
