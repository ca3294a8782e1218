import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  edges,
  findCycle,
  findCycles,
  inbound,
  outbound,
  startTasks,
  topologicalOrder,
} from "../../../lib/definition/graph";
import type { TaskDefinition, Transition, WorkflowDefinition } from "../../../lib/definition/types";

function workflow(tasks: Record<string, Transition[] | undefined>): WorkflowDefinition {
  return {
    name: "wf",
    tasks: Object.fromEntries(
      Object.entries(tasks).map(([name, next]): [string, TaskDefinition] => [
        name,
        next ? { action: "core.noop", next } : { action: "core.noop" },
      ]),
    ),
  };
}

/** The DESIGN.md example's graph. */
const design = workflow({
  prepare: [{ when: "succeeded", do: ["process_items"] }],
  process_items: [
    { when: "succeeded", do: ["validate"] },
    { when: "failed", do: ["cleanup"] },
  ],
  validate: undefined,
  cleanup: undefined,
});

describe("edges, inbound, outbound", () => {
  it("lists every edge in definition order", () => {
    expect(edges(design)).toEqual([
      { from: "prepare", to: "process_items", when: "succeeded" },
      { from: "process_items", to: "validate", when: "succeeded" },
      { from: "process_items", to: "cleanup", when: "failed" },
    ]);
  });

  it("gives the edges into and out of a task", () => {
    expect(inbound(design, "process_items")).toEqual([
      { from: "prepare", to: "process_items", when: "succeeded" },
    ]);
    expect(outbound(design, "process_items")).toEqual([
      { from: "process_items", to: "validate", when: "succeeded" },
      { from: "process_items", to: "cleanup", when: "failed" },
    ]);
    expect(inbound(design, "prepare")).toEqual([]);
    expect(outbound(design, "cleanup")).toEqual([]);
    expect(outbound(design, "no_such_task")).toEqual([]);
  });

  it("keeps one edge per transition, so a join sees every task that points at it", () => {
    const join = workflow({
      a: [{ when: "succeeded", do: ["c"] }],
      b: [
        { when: "succeeded", do: ["c"] },
        { when: "failed", do: ["c"] },
      ],
      c: undefined,
    });
    expect(inbound(join, "c")).toEqual([
      { from: "a", to: "c", when: "succeeded" },
      { from: "b", to: "c", when: "succeeded" },
      { from: "b", to: "c", when: "failed" },
    ]);
  });
});

describe("startTasks", () => {
  it("are the tasks nothing points at, in definition order", () => {
    expect(startTasks(design)).toEqual(["prepare"]);
    const parallel = workflow({ z: [{ when: "always", do: ["m"] }], m: undefined, a: undefined });
    expect(startTasks(parallel)).toEqual(["z", "a"]);
  });
});

describe("findCycle and findCycles", () => {
  it("find nothing in a graph without cycles", () => {
    expect(findCycle(design.tasks)).toBeUndefined();
    expect(findCycles(design.tasks)).toEqual([]);
  });

  it("find a cycle as the path round it", () => {
    const tasks = workflow({
      a: [{ when: "succeeded", do: ["b"] }],
      b: [{ when: "succeeded", do: ["c"] }],
      c: [{ when: "failed", do: ["a"] }],
    }).tasks;
    expect(findCycle(tasks)).toEqual(["a", "b", "c", "a"]);
  });

  it("find a self-loop", () => {
    expect(findCycle({ a: { next: [{ do: ["a"] }] } })).toEqual(["a", "a"]);
  });

  it("find one cycle per closing edge", () => {
    const tasks = {
      s: { next: [{ do: ["a", "c"] }] },
      a: { next: [{ do: ["b"] }] },
      b: { next: [{ do: ["a"] }] },
      c: { next: [{ do: ["c"] }] },
    };
    expect(findCycles(tasks)).toEqual([
      ["a", "b", "a"],
      ["c", "c"],
    ]);
  });

  it("ignore edges to unknown tasks", () => {
    expect(findCycle({ a: { next: [{ do: ["ghost"] }] } })).toBeUndefined();
  });
});

describe("topologicalOrder", () => {
  it("puts every task after the tasks that point at it", () => {
    expect(topologicalOrder(design)).toEqual(["prepare", "process_items", "validate", "cleanup"]);
  });

  it("keeps definition order among tasks free at the same time", () => {
    const diamond = workflow({
      d: undefined,
      b: [{ when: "succeeded", do: ["d"] }],
      a: [{ when: "succeeded", do: ["c", "b"] }],
      c: [{ when: "succeeded", do: ["d"] }],
    });
    expect(topologicalOrder(diamond)).toEqual(["a", "b", "c", "d"]);
  });

  it("throws on a cycle", () => {
    const cyclic = workflow({ a: [{ when: "succeeded", do: ["b"] }], b: [{ when: "succeeded", do: ["a"] }] });
    expect(() => topologicalOrder(cyclic)).toThrow("the task graph has a cycle: a -> b -> a");
  });

  it("orders any graph without cycles so that every edge goes forward", () => {
    // A random DAG: task i may point only at tasks j > i; tasks are listed in a shuffled order.
    const dag = fc.integer({ min: 1, max: 30 }).chain((size) =>
      fc.tuple(
        fc.array(fc.tuple(fc.nat(size - 1), fc.nat(size - 1)), { maxLength: size * 3 }),
        fc.shuffledSubarray(
          Array.from({ length: size }, (_, i) => i),
          { minLength: size, maxLength: size },
        ),
      ),
    );
    fc.assert(
      fc.property(dag, ([pairs, listing]) => {
        const targets = new Map<number, Set<number>>();
        for (const [x, y] of pairs) {
          if (x === y) continue;
          const [from, to] = x < y ? [x, y] : [y, x];
          targets.set(from, (targets.get(from) ?? new Set()).add(to));
        }
        const definition = workflow(
          Object.fromEntries(
            listing.map((i) => {
              const to = [...(targets.get(i) ?? [])].map((j) => `t${j}`);
              return [`t${i}`, to.length > 0 ? [{ when: "always", do: to }] : undefined];
            }),
          ),
        );
        const order = topologicalOrder(definition);
        expect([...order].sort()).toEqual(Object.keys(definition.tasks).sort());
        const position = new Map(order.map((task, index) => [task, index]));
        for (const edge of edges(definition)) {
          expect(position.get(edge.from)).toBeLessThan(position.get(edge.to) ?? -1);
        }
        expect(findCycle(definition.tasks)).toBeUndefined();
        for (const start of startTasks(definition)) expect(inbound(definition, start)).toEqual([]);
      }),
    );
  });
});
