/**
 * Random workflows for the chaos checker: layers of tasks (chains, parallel branches, `join: all`),
 * with-items tasks of random size and concurrency, items that fail a few attempts before they
 * succeed, and sometimes a task that fails for good with a `when: failed` branch. Every task calls
 * the sink, so the sink's record is the ground truth of what ran.
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

export function randomShape(random: () => number, name: string, sinkUrl: string): Shape {
  const pick = (n: number) => Math.floor(random() * n);
  const tasks: Record<string, TaskDefinition> = {};
  const fanOuts: Shape["fanOuts"] = {};
  const call = (task: string): TaskDefinition => ({
    action: "core.http",
    input: { url: `${sinkUrl}/call`, body: { task } },
    // a crash can cost an attempt (its lease expires): leave room beyond the 2 planned failures
    retry: { maxAttempts: 10, intervalSeconds: 0.2, backoffRate: 1 },
    timeoutSeconds: 5,
  });
  let previous: string[] = [];
  const layers = 1 + pick(4);
  for (let layer = 0; layer < layers; layer++) {
    const current: string[] = [];
    const width = 1 + pick(3);
    for (let k = 0; k < width; k++) {
      const task = `t${layer}_${k}`;
      const spec = call(task);
      if (random() < 0.35) {
        const size = pick(7);
        const concurrency = 1 + pick(3);
        Object.assign(spec, {
          withItems: `{% [${Array.from({ length: size }, (_, i) => i).join(",")}] %}`,
          concurrency,
        });
        spec.input = { url: `${sinkUrl}/call`, body: { task, item: "{% item %}" } };
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
    tasks.doomed = {
      ...call("doomed"),
      input: { url: `${sinkUrl}/doomed` },
      next: [{ when: "failed", do: ["rescue"] }],
    };
    tasks.rescue = call("rescue");
    names.push("rescue");
  }
  return { definition: { name, tasks }, fanOuts, tasks: names, doomed };
}
