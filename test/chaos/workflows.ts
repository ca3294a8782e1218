/**
 * Random workflows for the chaos checker: layers of tasks (chains, parallel branches, `join: all`),
 * with-items tasks of random size and concurrency, items that fail a few attempts before they
 * succeed, and sometimes a task that fails for good with a `when: failed` branch. Every task calls
 * the sink, so the sink's record is the ground truth of what ran. The deterministic simulation
 * draws the same shapes with an in-process action instead.
 */
import type { TaskDefinition, WorkflowDefinition } from "../../lib/definition/types";

export interface Shape {
  definition: WorkflowDefinition;
  /** with-items tasks and their item count and concurrency */
  fanOuts: Record<string, { size: number; concurrency: number }>;
  /** tasks that must run (every task except those behind an untaken branch) */
  tasks: string[];
  /** the task that fails for good (its failure is handled), if any */
  doomed?: string;
}

/** How many attempts of an execution the sink fails (0 to 2, well under `maxAttempts`). */
export function transientFailures(idempotencyKey: string): number {
  let hash = 0;
  for (const char of idempotencyKey) hash = (hash * 31 + char.charCodeAt(0)) | 0;
  const n = Math.abs(hash) % 10;
  return n < 6 ? 0 : n < 9 ? 1 : 2;
}

/** How a task of a random shape calls out: `item` for the items of a with-items task, `doomed` for the task that fails for good. */
export type TaskCall = (task: string, options?: { item?: boolean; doomed?: boolean }) => TaskDefinition;

/** A crash can cost an attempt (its lease expires): leave room beyond the 2 planned failures. */
const RETRY = { maxAttempts: 10, intervalSeconds: 0.2, backoffRate: 1 };

/** Tasks that call the checker's HTTP sink (`/doomed` always answers 400). */
export const sinkCall =
  (sinkUrl: string): TaskCall =>
  (task, options = {}) => ({
    action: "core.http",
    input: options.doomed
      ? { url: `${sinkUrl}/doomed` }
      : { url: `${sinkUrl}/call`, body: options.item ? { task, item: "{% item %}" } : { task } },
    retry: RETRY,
    timeoutSeconds: 5,
  });

export function randomShape(random: () => number, name: string, call: TaskCall): Shape {
  const pick = (n: number) => Math.floor(random() * n);
  const tasks: Record<string, TaskDefinition> = {};
  const fanOuts: Shape["fanOuts"] = {};
  let previous: string[] = [];
  const layers = 1 + pick(4);
  for (let layer = 0; layer < layers; layer++) {
    const current: string[] = [];
    const width = 1 + pick(3);
    for (let k = 0; k < width; k++) {
      const task = `t${layer}_${k}`;
      let spec = call(task);
      if (random() < 0.35) {
        const size = pick(7);
        const concurrency = 1 + pick(3);
        spec = {
          ...call(task, { item: true }),
          withItems: `{% [${Array.from({ length: size }, (_, i) => i).join(",")}] %}`,
          concurrency,
        };
        fanOuts[task] = { size, concurrency };
      }
      if (previous.length > 0) {
        const preds =
          random() < 0.4 && previous.length > 1
            ? [previous[0], previous[previous.length - 1]]
            : [previous[pick(previous.length)]];
        for (const pred of new Set(preds as string[])) {
          const from = tasks[pred] as TaskDefinition;
          from.next = [...(from.next ?? []), { when: "succeeded", do: [task] }];
        }
        if (new Set(preds).size > 1) spec.join = "all";
      }
      tasks[task] = spec;
      current.push(task);
    }
    previous = current;
  }
  const names = Object.keys(tasks);
  let doomed: string | undefined;
  if (random() < 0.3) {
    doomed = "doomed";
    tasks.doomed = { ...call("doomed", { doomed: true }), next: [{ when: "failed", do: ["rescue"] }] };
    tasks.rescue = call("rescue");
    names.push("rescue");
  }
  return { definition: { name, tasks }, fanOuts, tasks: names, doomed };
}

/**
 * The workload that measures recovery: a with-items task of `size` items, all at once, then a
 * successor, every task with the default timeout (so the default lease), calling the sink.
 */
export function fanOutAndSuccessor(name: string, call: TaskCall, size = 6): Shape {
  const { timeoutSeconds: _item, ...item } = call("items", { item: true });
  const { timeoutSeconds: _after, ...after } = call("after");
  return {
    definition: {
      name,
      tasks: {
        items: {
          ...item,
          withItems: `{% [${Array.from({ length: size }, (_, i) => i).join(",")}] %}`,
          concurrency: size,
          next: [{ when: "succeeded", do: ["after"] }],
        },
        after,
      },
    },
    fanOuts: { items: { size, concurrency: size } },
    tasks: ["items", "after"],
  };
}
