import { describe, expect, it } from "vitest";
import { eventsOf, register, waitForRun } from "../helpers/runs";
import { peakOverlap, useSink } from "../helpers/sink";
import { useLocalStack } from "../helpers/stack";

const ROUNDS = Number(process.env.F1_ROUNDS ?? 30);
// 100 items released at the same instant need 100 workers polling at once
const stack = useLocalStack({ pollerConcurrency: { worker: 100, advance: 4 } });
const sinkFixture = useSink();
const sink = () => sinkFixture.sink;

/** `prepare` echoes the items, `process_items` calls the sink per item, then `validate` calls it once. */
function fanInWorkflow(name: string, concurrency: number) {
  return {
    name,
    tasks: {
      prepare: {
        action: "core.echo",
        input: { items: "{% input.items %}" },
        next: [{ do: ["process_items"] }],
      },
      process_items: {
        action: "core.http",
        withItems: "{% tasks.prepare.output.items %}",
        concurrency,
        input: { url: `${sink().url}/item`, body: { value: "{% item %}", index: "{% index %}" } },
        next: [{ when: "succeeded", do: ["validate"] }],
      },
      validate: {
        action: "core.http",
        input: { url: `${sink().url}/validate`, body: "{% tasks.process_items.output %}" },
      },
    },
    output: "{% tasks.process_items.output.body %}",
  };
}

describe("with-items fan-out and fan-in", () => {
  it("F1: 5 items, concurrency 3, released at the same instant: validate is called exactly once (30 rounds)", async () => {
    await register(stack, fanInWorkflow("f1", 3));
    for (let round = 0; round < ROUNDS; round++) {
      sink().reset();
      const held = sink().holdNext(3);
      const items = [10, 20, 30, 40, 50];
      const { runId } = await stack.client.createRun("f1", { input: { items } });
      await held;
      const second = sink().holdNext(2);
      sink().release(); // the first three finish together
      await second;
      sink().release(); // and the last two
      const run = await waitForRun(stack, runId);
      expect(run.status, `round ${round}`).toBe("succeeded");
      expect(sink().requestsTo("/validate"), `round ${round}`).toHaveLength(1);
      expect(sink().requestsTo("/item")).toHaveLength(5);
      expect(run.tasks.process_items.items).toEqual({
        total: 5,
        queued: 0,
        running: 0,
        succeeded: 5,
        failed: 0,
      });
      const validate = sink().requestsTo("/validate")[0]?.json as { body: unknown }[];
      expect(validate.map((o) => o.body)).toEqual(items.map(() => ({ ok: true })));
      expect(
        new Set(
          sink()
            .requestsTo("/item")
            .map((r) => r.headers["idempotency-key"]),
        ).size,
      ).toBe(5);
      expect(
        sink()
          .requestsTo("/item")
          .map((r) => (r.json as { index: number }).index)
          .sort(),
      ).toEqual([0, 1, 2, 3, 4]);
    }
  }, 300_000);

  it("F1 with 100 items released at the same instant: validate is called exactly once", async () => {
    await register(stack, fanInWorkflow("f1-wide", 100));
    for (let round = 0; round < 3; round++) {
      sink().reset();
      const held = sink().holdNext(100);
      const items = Array.from({ length: 100 }, (_, i) => i);
      const { runId } = await stack.client.createRun("f1-wide", { input: { items } });
      await held;
      sink().release();
      const run = await waitForRun(stack, runId, undefined, 60_000);
      expect(run.status).toBe("succeeded");
      expect(sink().requestsTo("/validate")).toHaveLength(1);
      expect(sink().requestsTo("/item")).toHaveLength(100);
      expect(run.tasks.process_items.items).toEqual({
        total: 100,
        queued: 0,
        running: 0,
        succeeded: 100,
        failed: 0,
      });
      const queued = (await eventsOf(stack, runId)).filter(
        (e) => e.type === "TaskQueued" && e.task === "validate",
      );
      expect(queued).toHaveLength(1);
    }
  }, 180_000);

  it("never has more than `concurrency` items running, as seen by the server", async () => {
    sink().reset();
    sink().delay("/item", 150);
    await register(stack, fanInWorkflow("capped", 4));
    const { runId } = await stack.client.createRun("capped", {
      input: { items: Array.from({ length: 20 }, (_, i) => i) },
    });
    const run = await waitForRun(stack, runId, undefined, 60_000);
    expect(run.status).toBe("succeeded");
    const calls = sink().requestsTo("/item");
    expect(calls).toHaveLength(20);
    const peak = peakOverlap(calls);
    expect(peak).toBeLessThanOrEqual(4);
    expect(peak).toBeGreaterThanOrEqual(2); // it does run items in parallel
    expect(run.output).toHaveLength(20);
  });

  it("an empty list succeeds at once with output []", async () => {
    sink().reset();
    await register(stack, fanInWorkflow("empty", 3));
    const { runId } = await stack.client.createRun("empty", { input: { items: [] } });
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("succeeded");
    expect(run.tasks.process_items).toMatchObject({ status: "succeeded", items: { total: 0 } });
    expect(
      sink()
        .requestsTo("/validate")
        .map((r) => r.json),
    ).toEqual([[]]);
  });

  it("a with-items start task fans out straight from the run input; outputs come back in index order", async () => {
    await register(stack, {
      name: "squares",
      tasks: {
        square: {
          action: "core.echo",
          withItems: "{% input.n %}",
          concurrency: 3,
          input: "{% item * item %}",
        },
      },
      output: "{% tasks.square.output %}",
    });
    const n = Array.from({ length: 12 }, (_, i) => i);
    const { runId } = await stack.client.createRun("squares", { input: { n } });
    const run = await waitForRun(stack, runId);
    expect(run.output).toEqual(n.map((i) => i * i));
  });
});

describe("with-items retries, failures, timeouts and cancel", () => {
  it("an item failing twice succeeds on attempt 3; the waits follow intervalSeconds and backoffRate", async () => {
    sink().reset();
    sink().respond("/retry/1", [503, 503, 200]);
    await register(stack, {
      name: "item-retry",
      tasks: {
        each: {
          action: "core.http",
          withItems: "{% input.items %}",
          input: { url: `${sink().url}/retry/{% index %}` },
          retry: { maxAttempts: 3, intervalSeconds: 1, backoffRate: 2 },
        },
      },
    });
    const { runId } = await stack.client.createRun("item-retry", { input: { items: ["a", "b", "c"] } });
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("succeeded");
    const calls = sink().requestsTo("/retry/1");
    expect(calls.map((c) => c.headers["x-onceflow-attempt"])).toEqual(["1", "2", "3"]);
    expect(new Set(calls.map((c) => c.headers["idempotency-key"]))).toEqual(new Set([`${runId}/each/1`]));
    const [first, second, third] = calls.map((c) => c.at) as [number, number, number];
    expect(second - first).toBeGreaterThanOrEqual(1000); // intervalSeconds
    expect(third - second).toBeGreaterThanOrEqual(2000); // intervalSeconds × backoffRate
    expect(sink().requestsTo("/retry/0")).toHaveLength(1);
  });

  function tolerating(name: string, percentage: number) {
    return {
      name,
      tasks: {
        each: {
          action: "core.http",
          withItems: "{% input.items %}",
          concurrency: 2,
          toleratedFailurePercentage: percentage,
          input: { url: `${sink().url}/tol/{% index %}` },
          next: [
            { when: "succeeded", do: ["ok"] },
            { when: "failed", do: ["cleanup"] },
          ],
        },
        ok: { action: "core.http", input: { url: `${sink().url}/ok`, body: "{% tasks.each.output %}" } },
        cleanup: { action: "core.http", input: { url: `${sink().url}/cleanup` } },
      },
    };
  }

  it("tolerated failures: the task succeeds with null for failed items, their errors in the events", async () => {
    sink().reset();
    sink().respond("/tol/3", 400);
    sink().respond("/tol/7", 400);
    await register(stack, tolerating("tolerant", 20));
    const { runId } = await stack.client.createRun("tolerant", {
      input: { items: Array.from({ length: 10 }, (_, i) => i) },
    });
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("succeeded");
    expect(run.tasks.each.items).toMatchObject({ total: 10, succeeded: 8, failed: 2 });
    const output = sink().requestsTo("/ok")[0]?.json as unknown[];
    expect(output.map((o) => o === null)).toEqual([
      false,
      false,
      false,
      true,
      false,
      false,
      false,
      true,
      false,
      false,
    ]);
    const failed = (await eventsOf(stack, runId)).filter((e) => e.type === "TaskFailed" && e.task === "each");
    expect(failed.map((e) => e.item)).toEqual(expect.arrayContaining([3, 7]));
    expect(sink().requestsTo("/cleanup")).toHaveLength(0);
  });

  it("past the tolerance: no further items are dispatched, and `next` runs once after the running items settle", async () => {
    sink().reset();
    sink().respond("/tol/1", 400);
    sink().delay("/tol/0", 300); // item 0 is still running when item 1 fails
    await register(stack, tolerating("intolerant", 0));
    const { runId } = await stack.client.createRun("intolerant", {
      input: { items: Array.from({ length: 10 }, (_, i) => i) },
    });
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("succeeded"); // the failure was handled by `when: failed`
    expect(run.tasks.each.status).toBe("failed");
    expect(run.tasks.each.items).toMatchObject({ total: 10, succeeded: 1, failed: 1, running: 0 });
    const itemCalls = sink().requests.filter((r) => r.path.startsWith("/tol/"));
    expect(itemCalls.map((r) => r.path).sort()).toEqual(["/tol/0", "/tol/1"]);
    const cleanup = sink().requestsTo("/cleanup");
    expect(cleanup).toHaveLength(1);
    // the failure branch started only after item 0 (still running when item 1 failed) answered
    const item0 = sink().requestsTo("/tol/0")[0];
    expect(cleanup[0]?.at).toBeGreaterThanOrEqual(item0?.answeredAt ?? Number.POSITIVE_INFINITY);
    expect(sink().requestsTo("/ok")).toHaveLength(0);
  });

  it("an item that times out is aborted, retried, then fails the task", async () => {
    await register(stack, {
      name: "item-timeout",
      tasks: {
        each: {
          action: "core.sleep",
          withItems: "{% input.items %}",
          input: { seconds: "{% item %}" },
          timeoutSeconds: 1,
          retry: { maxAttempts: 2, intervalSeconds: 0, backoffRate: 1 },
        },
      },
    });
    const { runId } = await stack.client.createRun("item-timeout", { input: { items: [0, 5] } });
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("failed");
    expect(run.tasks.each.items).toMatchObject({ succeeded: 1, failed: 1 });
    const events = await eventsOf(stack, runId);
    const failed = events.find((e) => e.type === "TaskFailed" && e.item === 1);
    expect(failed?.attempt).toBe(2);
    expect(failed?.detail?.error?.code).toBe("TaskTimedOut");
  });

  it("a run past its timeoutSeconds fails with RunTimedOut and dispatches nothing after", async () => {
    sink().reset();
    sink().delay("/slow", 400);
    await register(stack, {
      name: "run-timeout",
      timeoutSeconds: 1,
      tasks: {
        each: {
          action: "core.http",
          withItems: "{% input.items %}",
          concurrency: 1,
          input: { url: `${sink().url}/slow` },
        },
      },
    });
    const { runId } = await stack.client.createRun("run-timeout", {
      input: { items: Array.from({ length: 10 }, (_, i) => i) },
    });
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("failed");
    expect(run.error.code).toBe("RunTimedOut");
    const callsAtEnd = sink().requestsTo("/slow").length;
    expect(callsAtEnd).toBeLessThan(10);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(sink().requestsTo("/slow")).toHaveLength(callsAtEnd);
    const events = await eventsOf(stack, runId);
    const end = events.findIndex((e) => e.type === "RunFailed");
    expect(events.slice(end).filter((e) => e.type === "TaskQueued" || e.type === "TaskStarted")).toEqual([]);
  });

  it("cancel mid-fan-out: no new items start, running ones finish and are recorded, the successor never runs", async () => {
    sink().reset();
    await register(stack, fanInWorkflow("cancel-fan", 2));
    const held = sink().holdNext(2);
    const { runId } = await stack.client.createRun("cancel-fan", {
      input: { items: Array.from({ length: 20 }, (_, i) => i) },
    });
    await held;
    expect(await stack.api("POST", `/runs/${runId}/cancel`)).toMatchObject({ status: 202 });
    sink().release();
    const run = await waitForRun(stack, runId, (r) => r.tasks.process_items.items.running === 0);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(run.status).toBe("cancelled");
    expect(run.tasks.process_items).toMatchObject({
      status: "cancelled",
      items: { total: 20, succeeded: 2, failed: 0, running: 0, cancelled: 18 },
    });
    expect(sink().requestsTo("/item")).toHaveLength(2);
    expect(sink().requestsTo("/validate")).toHaveLength(0);
  });
});
