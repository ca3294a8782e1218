import { inbound, outbound, startTasks, topologicalOrder } from "../definition/graph";
import type { Edge, WorkflowDefinition } from "../definition/types";

export type TaskStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export const isSettled = (status: string | undefined) =>
  status === "succeeded" || status === "failed" || status === "cancelled";

/** What a run should do next, given the statuses of the tasks it has dispatched so far. */
export type Evaluation =
  | { complete: false; ready: string[] }
  | { complete: true; ready: []; status: "succeeded" | "failed"; unhandled: string[] };

type Fate = "run" | "dead" | "waiting";

/**
 * The run's graph, evaluated as a pure function of the task statuses: level-triggered, so that any
 * handler, duplicated or redelivered, reaches the same answer from the same state.
 *
 * - A start task runs. An edge `from -> to (when)` fires when `from` settled with a matching
 *   outcome and is dead when `from` settled otherwise or will never run.
 * - A task without `join` runs when any inbound edge fires (once: a task runs at most once per run)
 *   and is dead when all are dead; with `join: all` it runs when all fire, and is dead when any is
 *   dead.
 * - `ready` are tasks that should run and have no execution yet. The run is complete when every
 *   task is settled or dead; it succeeded when every failed task has a `when: failed` transition.
 */
export function evaluate(
  definition: WorkflowDefinition,
  statuses: ReadonlyMap<string, TaskStatus>,
): Evaluation {
  const fates = new Map<string, Fate>();
  const starts = new Set(startTasks(definition));
  const edgeState = (edge: Edge): "fired" | "dead" | "pending" => {
    const status = statuses.get(edge.from);
    if (fates.get(edge.from) === "dead") return "dead";
    if (!isSettled(status)) return "pending";
    if (status === "cancelled") return "dead";
    return edge.when === "always" || edge.when === status ? "fired" : "dead";
  };
  for (const name of topologicalOrder(definition)) {
    if (starts.has(name)) {
      fates.set(name, "run");
      continue;
    }
    const states = inbound(definition, name).map(edgeState);
    const join = definition.tasks[name]?.join === "all";
    const fired = states.filter((s) => s === "fired").length;
    const dead = states.filter((s) => s === "dead").length;
    if (join) fates.set(name, dead > 0 ? "dead" : fired === states.length ? "run" : "waiting");
    else fates.set(name, fired > 0 ? "run" : dead === states.length ? "dead" : "waiting");
  }

  const ready: string[] = [];
  let complete = true;
  for (const [name, fate] of fates) {
    const status = statuses.get(name);
    if (fate === "run" && status === undefined) ready.push(name);
    if (fate === "dead" && status === undefined) continue;
    if (!isSettled(status)) complete = false;
  }
  if (!complete) return { complete: false, ready };

  const unhandled = [...fates.keys()].filter(
    (name) => statuses.get(name) === "failed" && !failureHandled(definition, name),
  );
  return { complete: true, ready: [], status: unhandled.length > 0 ? "failed" : "succeeded", unhandled };
}

/** Whether a failure of `task` is handled: it has a `when: failed` transition. */
export const failureHandled = (definition: WorkflowDefinition, task: string) =>
  outbound(definition, task).some((edge) => edge.when === "failed");
