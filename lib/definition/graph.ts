/**
 * The task graph of a definition: an edge `from -> to (when)` for every task named in a `next[].do`.
 * Everything here is pure and keeps the order in which the definition lists tasks and transitions.
 */
import type { Edge, WorkflowDefinition } from "./types";

/** The part of a task the graph is made of; validation passes tasks it has only partly checked. */
export type GraphTasks = Readonly<Record<string, { next?: readonly { do: readonly string[] }[] }>>;

export function edges(definition: WorkflowDefinition): Edge[] {
  return Object.entries(definition.tasks).flatMap(([from, task]) =>
    (task.next ?? []).flatMap((transition) =>
      transition.do.map((to) => ({ from, to, when: transition.when })),
    ),
  );
}

export function inbound(definition: WorkflowDefinition, task: string): Edge[] {
  return edges(definition).filter((edge) => edge.to === task);
}

export function outbound(definition: WorkflowDefinition, task: string): Edge[] {
  return (definition.tasks[task]?.next ?? []).flatMap((transition) =>
    transition.do.map((to) => ({ from: task, to, when: transition.when })),
  );
}

/** Tasks no `next` points at: they start the run. */
export function startTasks(definition: WorkflowDefinition): string[] {
  const targets = new Set(edges(definition).map((edge) => edge.to));
  return Object.keys(definition.tasks).filter((task) => !targets.has(task));
}

/** Successors of each task, known tasks only, without repeats. */
function successors(tasks: GraphTasks): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const [name, task] of Object.entries(tasks)) {
    const targets = (task.next ?? [])
      .flatMap((transition) => transition.do)
      .filter((to) => Object.hasOwn(tasks, to));
    graph.set(name, [...new Set(targets)]);
  }
  return graph;
}

/**
 * Every cycle a depth-first search closes, each as the path that goes round it (`[a, b, a]`;
 * a self-loop is `[a, a]`). Each cycle has its own closing edge, so there are at most as many
 * cycles as edges, and a graph with a cycle always yields at least one.
 */
export function findCycles(tasks: GraphTasks): string[][] {
  const graph = successors(tasks);
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (task: string): void => {
    state.set(task, "open");
    stack.push(task);
    for (const next of graph.get(task) ?? []) {
      const seen = state.get(next);
      if (seen === "open") cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (seen === undefined) visit(next);
    }
    stack.pop();
    state.set(task, "done");
  };
  for (const task of graph.keys()) {
    if (!state.has(task)) visit(task);
  }
  return cycles;
}

export function findCycle(tasks: GraphTasks): string[] | undefined {
  return findCycles(tasks)[0];
}

/**
 * Tasks in an order where every task comes after all the tasks that point at it; among tasks that
 * are free at the same time, definition order. Throws on a cycle (a validated definition has none).
 */
export function topologicalOrder(definition: WorkflowDefinition): string[] {
  const graph = successors(definition.tasks);
  const pending = new Map<string, number>([...graph.keys()].map((task) => [task, 0]));
  for (const targets of graph.values()) {
    for (const to of targets) pending.set(to, (pending.get(to) ?? 0) + 1);
  }
  const order: string[] = [];
  const placed = new Set<string>();
  while (order.length < graph.size) {
    const free = [...graph.keys()].find((task) => !placed.has(task) && pending.get(task) === 0);
    if (free === undefined) {
      throw new Error(`the task graph has a cycle: ${(findCycle(definition.tasks) ?? []).join(" -> ")}`);
    }
    order.push(free);
    placed.add(free);
    for (const to of graph.get(free) ?? []) pending.set(to, (pending.get(to) ?? 0) - 1);
  }
  return order;
}
