import "../../helpers/unit-env";
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { registerAction } from "../../../lib/actions/registry";
import { db } from "../../../lib/clients";
import { runAttempt } from "../../../lib/engine/attempt";
import type { TaskRecord } from "../../../lib/engine/task-record";

const dynamo = mockClient(db());
registerAction(
  "test.wait-for-abort",
  (_input, { signal }) =>
    new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
);

const record: TaskRecord = {
  runId: "r1",
  task: "long",
  status: "running",
  attempt: 2,
  workerId: "w1",
  action: "test.wait-for-abort",
  input: null,
  timeoutSeconds: 100, // lease: 10 s + 10 s, renewed every 6.7 s
  retry: { maxAttempts: 3, intervalSeconds: 1, backoffRate: 2 },
  createdAt: "x",
};

beforeEach(() => {
  dynamo.reset();
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

describe("leases and heartbeats", () => {
  it("a long action renews its lease (fenced on attempt and worker) and its message's visibility", async () => {
    dynamo.on(UpdateCommand).resolves({});
    const renewed: number[] = [];
    const attempt = runAttempt(record, async (seconds) => {
      renewed.push(seconds);
    });
    await vi.advanceTimersByTimeAsync(21_000);
    const updates = dynamo.commandCalls(UpdateCommand).map((c) => c.args[0].input);
    expect(updates).toHaveLength(3);
    expect(updates[0]?.ExpressionAttributeValues).toMatchObject({
      ":attempt": 2,
      ":worker": "w1",
      ":running": "running",
    });
    expect(renewed).toEqual([20, 20, 20]);
    await vi.advanceTimersByTimeAsync(80_000); // then the attempt times out
    expect(await attempt).toMatchObject({ ok: false, error: { code: "TaskTimedOut" }, retryable: true });
  });

  it("the lease is kept while the result is written, however long that takes, and not after", async () => {
    dynamo.on(UpdateCommand).resolves({});
    registerAction("test.quick", () => "done");
    let written: (value: string) => void = () => {};
    const attempt = runAttempt({ ...record, action: "test.quick" }, undefined, (result) => {
      expect(result).toEqual({ ok: true, output: "done" });
      // a slow write: a give-back retrying on a busy limit item for 21 s
      return new Promise<string>((resolve) => {
        written = resolve;
      });
    });
    await vi.advanceTimersByTimeAsync(21_000);
    // three beats: without them the lease (20 s) would lapse before the result is in
    expect(dynamo.commandCalls(UpdateCommand)).toHaveLength(3);
    written("settled");
    expect(await attempt).toBe("settled");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(dynamo.commandCalls(UpdateCommand)).toHaveLength(3);
  });

  it("a worker whose lease was taken over stops its action at the next beat (LeaseLost) and renews no more", async () => {
    dynamo
      .on(UpdateCommand)
      .resolvesOnce({})
      .rejects(new ConditionalCheckFailedException({ message: "lost", $metadata: {} }));
    const attempt = runAttempt(record);
    await vi.advanceTimersByTimeAsync(21_000);
    expect(await attempt).toMatchObject({ ok: false, error: { code: "LeaseLost" }, retryable: true });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(dynamo.commandCalls(UpdateCommand)).toHaveLength(2);
  });
});
