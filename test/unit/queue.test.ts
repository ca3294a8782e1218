/**
 * lib/queue.ts: task messages go out in SendMessageBatch calls of at most 10 messages and at most
 * 240 KB of bodies (SQS refuses a batch over 256 KiB), since the message of an execution queued
 * without its record carries its input (up to 100 KB).
 */
import "../helpers/unit-env";
import { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { sqs } from "../../lib/clients";
import { sendTasks, type TaskMessage } from "../../lib/queue";

const queue = mockClient(sqs());
beforeEach(() => {
  queue.reset();
  queue.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
});

/** The message of item `item`, carrying an input of about `kb` KB. */
const itemMessage = (item: number, kb: number): TaskMessage => ({
  runId: "r1",
  task: "each",
  item,
  queued: {
    execution: {
      runId: "r1",
      task: "each",
      item,
      action: "core.noop",
      input: "x".repeat(kb * 1024),
      timeoutSeconds: 60,
      retry: { maxAttempts: 3, intervalSeconds: 1, backoffRate: 2 },
    },
    queuedAs: "2026-12-01T00:00:00.000Z#0000#00000000",
  },
});

const batches = () =>
  queue.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input.Entries ?? []);

describe("sendTasks", () => {
  it("sends small messages ten to a batch", async () => {
    await sendTasks(Array.from({ length: 25 }, (_, item) => ({ runId: "r1", task: "each", item })));
    expect(batches().map((b) => b.length)).toEqual([10, 10, 5]);
  });

  it("keeps a batch of large messages under 240 KB, every message sent once, in order", async () => {
    await sendTasks(Array.from({ length: 10 }, (_, item) => itemMessage(item, 100)));
    const sent = batches();
    expect(sent.map((b) => b.length)).toEqual([2, 2, 2, 2, 2]);
    for (const batch of sent) {
      const bytes = batch.reduce((sum, e) => sum + Buffer.byteLength(e.MessageBody ?? ""), 0);
      expect(bytes).toBeLessThanOrEqual(240 * 1024);
    }
    const items = sent.flat().map((e) => JSON.parse(e.MessageBody ?? "{}").item);
    expect(items).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("sends a message over the batch budget alone (SQS judges it)", async () => {
    await sendTasks([itemMessage(0, 10), itemMessage(1, 250), itemMessage(2, 10)]);
    expect(batches().map((b) => b.length)).toEqual([1, 1, 1]);
  });
});
