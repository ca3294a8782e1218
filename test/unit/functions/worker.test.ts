/**
 * The worker adapter's part in running a successor itself (lib/engine/work.ts): it says when there
 * is room for one: the batch's last record only, and the invocation's time left at least the
 * successor's timeout and 30 s more.
 */
import "../../helpers/unit-env";
import type { Context } from "aws-lambda";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { handler } from "../../../functions/worker";
import { type WorkOptions, work } from "../../../lib/engine/work";
import { lambdaContext, sqsEvent } from "../../helpers/lambda-events";

vi.mock("../../../lib/engine/work", () => ({ work: vi.fn() }));

const options: WorkOptions[] = [];
beforeEach(() => {
  options.splice(0);
  vi.mocked(work).mockImplementation(async (_message, _worker, given) => {
    options.push(given as WorkOptions);
    return { done: true };
  });
});

const withTimeLeft = (ms: number) => ({ ...lambdaContext, getRemainingTimeInMillis: () => ms }) as Context;

describe("worker: room for a successor", () => {
  it("only for the batch's last record: the records after it would wait", async () => {
    const event = sqsEvent([
      { runId: "r1", task: "a" },
      { runId: "r2", task: "b" },
    ]);
    await handler(event, withTimeLeft(150_000));
    expect(options.map((o) => o.roomFor?.(1))).toEqual([false, true]);
  });

  it("when the time left holds the successor's timeout and 30 s more", async () => {
    await handler(sqsEvent([{ runId: "r1", task: "a" }]), withTimeLeft(100_000));
    const [only] = options as [WorkOptions];
    expect(only.roomFor?.(70)).toBe(true);
    expect(only.roomFor?.(71)).toBe(false);
  });
});
