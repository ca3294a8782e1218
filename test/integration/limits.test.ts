/**
 * Concurrency limits (F4, I4), on the local stack: `limits.actions.NAME.maxRunning` caps the
 * executions of an action running at once across all runs; executions wait for a slot in a queue,
 * are handed one fairly across runs as slots free, and the counters end at 0.
 */
import { describe, expect, it } from "vitest";
import { type InterleavingPoint, onPoint } from "../../lib/engine/interleave";
import { readLimit } from "../../lib/engine/slot";
import { limitedWorkflow, runLimited } from "../helpers/limited-runs";
import { eventsOf, register, waitForRun } from "../helpers/runs";
import { peakOverlap, useSink } from "../helpers/sink";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack({ pollerConcurrency: { worker: 20, advance: 4 } });
const sinkFixture = useSink();
const sink = () => sinkFixture.sink;

/**
 * Holds the handlers reaching `name` and lets them go together: when `count` are there, or 300 ms
 * after the first (a worker's batch is handled one message at a time, so `count` may never come).
 */
function gather(name: InterleavingPoint, count: number): () => void {
  let held: (() => void)[] = [];
  let timer: NodeJS.Timeout | undefined;
  const go = () => {
    clearTimeout(timer);
    for (const resume of held) resume();
    held = [];
  };
  const remove = onPoint(name, () => {
    return new Promise<void>((resume) => {
      held.push(resume);
      if (held.length === 1) timer = setTimeout(go, 300);
      if (held.length >= count) go();
    });
  });
  return () => {
    remove();
    go();
  };
}

describe("concurrency limits", () => {
  it("a limit of 3 on an action used by 10 concurrent runs of 20 items: 3 at once, each item once, counters at 0", async () => {
    const { created, calls } = await runLimited(stack, sink(), {
      name: "limited",
      runs: 10,
      items: 20,
      maxRunning: 3,
      delayMs: 150,
    });
    // fair across runs: every run got its first call before any run had all of its calls
    const byRun = new Map<number, number[]>();
    for (const r of calls) {
      const run = (r.json as { run: number }).run;
      byRun.set(run, [...(byRun.get(run) ?? []), r.at]);
    }
    const firsts = [...byRun.values()].map((ats) => Math.min(...ats));
    const lasts = [...byRun.values()].map((ats) => Math.max(...ats));
    expect(Math.max(...firsts)).toBeLessThan(Math.min(...lasts));
    // the history says who waited and who was handed a slot
    const events = (await Promise.all(created.map((c) => eventsOf(stack, c.runId)))).flat();
    expect(events.filter((e) => e.type === "SlotWaiting").length).toBeGreaterThan(0);
    expect(events.filter((e) => e.type === "SlotAcquired").length).toBe(
      events.filter((e) => e.type === "SlotWaiting").length,
    );
  }, 240_000);

  it("20 executions of one run giving their slots back at the same instant: none gives up", async () => {
    // the give-backs race on the one limit item: hand-overs to the same head of the queue while
    // items wait, then decrements of the run's count; none may give up (its message would come back
    // only after the queue's visibility timeout, 15 min, and the run would stall)
    const maxRunning = 20;
    await register(
      stack,
      limitedWorkflow(sink(), { name: "same-instant", runs: 1, items: 0, maxRunning, delayMs: 0 }),
    );
    const release = gather("settle:before-write", maxRunning);
    try {
      for (let round = 0; round < 3; round++) {
        sink().reset();
        const items = Array.from({ length: 2 * maxRunning }, (_, k) => k);
        const { runId } = await stack.client.createRun("same-instant", { input: { run: round, items } });
        const run = await waitForRun(stack, runId, undefined, 60_000);
        expect(run.status).toBe("succeeded");
        const calls = sink().requestsTo("/limited");
        expect(new Set(calls.map((r) => JSON.stringify(r.json))).size).toBe(items.length);
        expect(calls).toHaveLength(items.length);
        expect(await readLimit({ workflow: "same-instant", action: "core.http" })).toEqual({
          pk: expect.any(String),
          sk: "LIMIT",
          active: 0,
          waiting: [],
        });
      }
    } finally {
      release();
    }
  }, 240_000);

  it("a workflow-wide limit caps every execution of its runs: 2 at once", async () => {
    await runLimited(stack, sink(), {
      name: "whole",
      runs: 5,
      items: 6,
      maxRunning: 2,
      delayMs: 100,
      scope: "workflow",
    });
  }, 120_000);

  it("shows a task waiting for a slot, and a plain task's place in the queue", async () => {
    await register(stack, {
      name: "one-slot",
      limits: { actions: { "core.http": { maxRunning: 1 } } },
      tasks: { call: { action: "core.http", input: { url: `${sink().url}/one`, body: "{% input %}" } } },
    });
    sink().reset();
    const held = sink().holdNext(1);
    const first = await stack.client.createRun("one-slot", { input: { n: 1 } });
    await held;
    const second = await stack.client.createRun("one-slot", { input: { n: 2 } });
    const waiting = await waitForRun(stack, second.runId, (r) => r.tasks.call?.waitingFor !== undefined);
    expect(waiting.tasks.call.waitingFor).toEqual({
      action: "core.http",
      maxRunning: 1,
      active: 1,
      waiting: 1,
      position: 1,
    });
    sink().release();
    const runs = await Promise.all([first, second].map((c) => waitForRun(stack, c.runId)));
    expect(runs.map((r) => r.status)).toEqual(["succeeded", "succeeded"]);
    expect(runs[1].tasks.call.waitingFor).toBeUndefined();
    expect(peakOverlap(sink().requestsTo("/one"))).toBe(1);
  });

  it("a cancelled run gives its slots back and leaves the queue", async () => {
    await register(
      stack,
      limitedWorkflow(sink(), { name: "cancel-limited", runs: 0, items: 0, maxRunning: 2, delayMs: 0 }),
    );
    sink().reset();
    const held = sink().holdNext(2);
    const items = Array.from({ length: 6 }, (_, k) => k);
    const a = await stack.client.createRun("cancel-limited", { input: { run: 0, items } });
    await held;
    const b = await stack.client.createRun("cancel-limited", { input: { run: 1, items } });
    await waitForRun(stack, b.runId, (r) => r.tasks.fan?.waitingFor?.waiting === 6);
    // a run cancelled while its items are parked: they are cancelled at once, and leave the queue
    const c = await stack.client.createRun("cancel-limited", { input: { run: 2, items } });
    await waitForRun(stack, c.runId, (r) => r.tasks.fan?.waitingFor?.waiting === 6);
    expect((await stack.api("POST", `/runs/${c.runId}/cancel`)).status).toBe(202);
    const rc = await waitForRun(stack, c.runId, (r) => r.tasks.fan?.items?.running === 0, 10_000);
    expect(rc.tasks.fan.items).toMatchObject({ cancelled: 6 });
    expect(rc.tasks.fan.waitingFor).toBeUndefined();
    expect((await stack.api("POST", `/runs/${a.runId}/cancel`)).status).toBe(202);
    sink().release(); // a's two running calls finish; its slots go to b
    const [ra, rb] = await Promise.all([a, b].map((c) => waitForRun(stack, c.runId, undefined, 60_000)));
    expect(ra.status).toBe("cancelled");
    expect(rb.status).toBe("succeeded");
    const limit = await readLimit({ workflow: "cancel-limited", action: "core.http" });
    expect(limit).toMatchObject({ active: 0, waiting: [] });
  }, 90_000);
});
