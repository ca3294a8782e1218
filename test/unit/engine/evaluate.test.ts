import { describe, expect, it } from "vitest";
import { seededRandom } from "../../../infra/local/seeded-random";
import type { TaskDefinition, WorkflowDefinition } from "../../../lib/definition/types";
import { evaluate, type TaskStatus } from "../../../lib/engine/evaluate";

const wf = (tasks: Record<string, Partial<TaskDefinition>>): WorkflowDefinition => ({
  name: "t",
  tasks: Object.fromEntries(Object.entries(tasks).map(([k, v]) => [k, { action: "core.noop", ...v }])),
});
const states = (entries: Record<string, TaskStatus>) => new Map(Object.entries(entries));

const diamond = wf({
  a: { next: [{ when: "succeeded", do: ["b", "c"] }] },
  b: { next: [{ when: "succeeded", do: ["d"] }] },
  c: { next: [{ when: "succeeded", do: ["d"] }] },
  d: { join: "all" },
});

describe("evaluate", () => {
  it("starts the tasks with no inbound transition", () => {
    expect(evaluate(diamond, states({}))).toEqual({ complete: false, ready: ["a"] });
  });

  it("dispatches parallel branches when their predecessor succeeds", () => {
    expect(evaluate(diamond, states({ a: "succeeded" }))).toEqual({ complete: false, ready: ["b", "c"] });
  });

  it("waits for every inbound task of a join", () => {
    expect(evaluate(diamond, states({ a: "succeeded", b: "succeeded", c: "running" })).ready).toEqual([]);
    expect(evaluate(diamond, states({ a: "succeeded", b: "succeeded", c: "succeeded" })).ready).toEqual([
      "d",
    ]);
  });

  it("skips a join whose branch failed, and fails the run for the unhandled failure", () => {
    const result = evaluate(diamond, states({ a: "succeeded", b: "succeeded", c: "failed" }));
    expect(result).toEqual({ complete: true, ready: [], status: "failed", unhandled: ["c"] });
  });

  it("starts a task without join on the first transition that fires, and only once", () => {
    const any = wf({
      a: { next: [{ when: "succeeded", do: ["c"] }] },
      b: { next: [{ when: "succeeded", do: ["c"] }] },
      c: {},
    });
    expect(evaluate(any, states({ a: "succeeded", b: "running" })).ready).toEqual(["c"]);
    expect(evaluate(any, states({ a: "succeeded", b: "succeeded", c: "queued" })).ready).toEqual([]);
  });

  it("a failure handled by `when: failed` lets the run succeed; `always` runs either way but does not handle", () => {
    const handled = wf({
      a: {
        next: [
          { when: "succeeded", do: ["ok"] },
          { when: "failed", do: ["cleanup"] },
        ],
      },
      ok: {},
      cleanup: {},
    });
    expect(evaluate(handled, states({ a: "failed" })).ready).toEqual(["cleanup"]);
    expect(evaluate(handled, states({ a: "failed", cleanup: "succeeded" }))).toMatchObject({
      complete: true,
      status: "succeeded",
    });
    const finallyOnly = wf({ a: { next: [{ when: "always", do: ["cleanup"] }] }, cleanup: {} });
    expect(evaluate(finallyOnly, states({ a: "failed" })).ready).toEqual(["cleanup"]);
    expect(evaluate(finallyOnly, states({ a: "failed", cleanup: "succeeded" }))).toMatchObject({
      status: "failed",
      unhandled: ["a"],
    });
  });

  it("propagates dead paths through untaken branches", () => {
    const def = wf({
      a: {
        next: [
          { when: "failed", do: ["x"] },
          { when: "succeeded", do: ["y"] },
        ],
      },
      x: { next: [{ when: "succeeded", do: ["z"] }] },
      y: {},
      z: {},
    });
    expect(evaluate(def, states({ a: "succeeded" })).ready).toEqual(["y"]);
    expect(evaluate(def, states({ a: "succeeded", y: "succeeded" }))).toMatchObject({
      complete: true,
      status: "succeeded",
    });
  });

  it("is not complete while an execution is queued or running", () => {
    const def = wf({ a: {} });
    expect(evaluate(def, states({ a: "queued" })).complete).toBe(false);
    expect(evaluate(def, states({ a: "running" })).complete).toBe(false);
  });
});

function randomDag(random: () => number): WorkflowDefinition {
  const n = 2 + Math.floor(random() * 8);
  const names = Array.from({ length: n }, (_, i) => `t${i}`);
  const tasks: Record<string, Partial<TaskDefinition>> = {};
  for (let i = 0; i < n; i++) {
    const next: TaskDefinition["next"] = [];
    for (const when of ["succeeded", "failed", "always"] as const) {
      const targets = names.slice(i + 1).filter(() => random() < 0.3);
      if (targets.length > 0) next.push({ when, do: targets });
    }
    tasks[names[i] as string] = { next, join: random() < 0.3 ? "all" : undefined };
  }
  return wf(tasks);
}

describe("evaluate, driven through seeded random schedules", () => {
  it("dispatches each task at most once and always reaches completion", () => {
    for (let seed = 1; seed <= 500; seed++) {
      const random = seededRandom(seed);
      const def = randomDag(random);
      const status = new Map<string, TaskStatus>();
      const dispatchedTwice: string[] = [];
      for (let step = 0; step < 100; step++) {
        const result = evaluate(def, status);
        // two handlers observing the same state: both get the same answer, the conditional put admits one
        const again = evaluate(def, status);
        expect(again).toEqual(result);
        if (result.complete) break;
        for (const name of result.ready) {
          if (status.has(name)) dispatchedTwice.push(name);
          status.set(name, "queued");
        }
        const open = [...status].filter(([, s]) => s === "queued").map(([k]) => k);
        expect(open.length, `seed ${seed}: not complete and nothing to run`).toBeGreaterThan(0);
        const pick = open[Math.floor(random() * open.length)] as string;
        status.set(pick, random() < 0.3 ? "failed" : "succeeded");
      }
      expect(dispatchedTwice, `seed ${seed}`).toEqual([]);
      expect(evaluate(def, status).complete, `seed ${seed}`).toBe(true);
    }
  });
});
