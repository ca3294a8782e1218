/**
 * The concurrency-limit scenario of issue 5, shared by the plain and the chaos test files: many
 * runs of a with-items task whose action has `maxRunning`, calling the sink, which records when
 * each call arrived and was answered.
 */
import { expect } from "vitest";
import { readLimit } from "../../lib/engine/slot";
import { register, waitForRun } from "./runs";
import { peakOverlap, type Sink } from "./sink";
import type { LocalStackFixture } from "./stack";

export interface LimitedRunsOptions {
  name: string;
  runs: number;
  items: number;
  maxRunning: number;
  /** How long the sink takes to answer each call. */
  delayMs: number;
  /** The limit on `core.http` (default), or the workflow-wide `limits.maxRunning`. */
  scope?: "action" | "workflow";
}

/** A workflow whose with-items task calls the sink under a limit, then a final step. */
export function limitedWorkflow(sink: Sink, o: LimitedRunsOptions) {
  return {
    name: o.name,
    limits:
      o.scope === "workflow"
        ? { maxRunning: o.maxRunning }
        : { actions: { "core.http": { maxRunning: o.maxRunning } } },
    tasks: {
      fan: {
        action: "core.http",
        withItems: "{% input.items %}",
        input: { url: `${sink.url}/limited`, body: { run: "{% input.run %}", item: "{% item %}" } },
        next: [{ do: ["done"] }],
      },
      done: { action: "core.echo", input: { ok: true } },
    },
  };
}

/**
 * Starts `runs` runs at the same instant, waits for them all, and checks what every limit must
 * give: every run succeeded, each item called once, never more than `maxRunning` calls at once
 * (and that many reached), and the limit's counters back to 0 with nobody waiting.
 */
export async function runLimited(stack: LocalStackFixture, sink: Sink, o: LimitedRunsOptions) {
  await register(stack, limitedWorkflow(sink, o));
  sink.reset();
  sink.delay("/limited", o.delayMs);
  const items = Array.from({ length: o.items }, (_, k) => k);
  const created = await Promise.all(
    Array.from({ length: o.runs }, (_, run) => stack.client.createRun(o.name, { input: { run, items } })),
  );
  expect(created.map((c) => c.created)).toEqual(Array(o.runs).fill(true));
  const runs = await Promise.all(created.map((c) => waitForRun(stack, c.runId, undefined, 180_000)));
  expect(runs.map((r) => r.status)).toEqual(Array(o.runs).fill("succeeded"));

  const calls = sink.requestsTo("/limited");
  const seen = calls.map((r) => JSON.stringify(r.json));
  expect(new Set(seen).size, "an item was called twice").toBe(seen.length);
  expect(calls).toHaveLength(o.runs * o.items);

  const limit = await readLimit({ workflow: o.name, action: o.scope === "workflow" ? "*" : "core.http" });
  expect(limit).toMatchObject({ active: 0, waiting: [] });
  expect(Object.keys(limit ?? {}).filter((k) => k.includes("#"))).toEqual([]);
  expect(peakOverlap(calls)).toBe(o.maxRunning);
  return { created, calls };
}
