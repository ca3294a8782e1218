/**
 * Scenario `efficiency` (the task over-execution scenario, F3): `tasks` independent runs of one
 * `core.sleep` task each (counted by the action itself: `bench.sleep`) for `taskSeconds`, with
 * `workers` concurrent worker invocations. The runs are created with `start: false` first; the
 * clock starts at the first trigger and stops at the last run's `endedAt`. Then the same runs on
 * the floor's requests alone (floor-executor.ts), the most any executor could reach here.
 */
import { executions } from "./actions";
import { cpuMsSince, efficiencyFigures, round } from "./figures";
import { floorRuns } from "./floor-executor";
import { type Emulators, mapLimit, startBenchStack, untilExecuted, waitForRuns } from "./setup";

export interface EfficiencyOptions {
  tasks: number;
  taskSeconds: number;
  workers: number;
}

export type EfficiencyFigures = ReturnType<typeof efficiencyFigures> & {
  /** The same runs on the floor's requests alone (floor-executor.ts), right after. */
  floorExecutor: { actualSeconds: number; efficiency: number; nodeCpuMsPerTask: number };
  /** This process's CPU time per task, triggers to the last run's end (fanout.ts says why it matters here). */
  nodeCpuMsPerTask: number;
};

/** Concurrent API clients creating and triggering the runs. */
const CLIENTS = 16;

export async function runEfficiency(
  emulators: Emulators,
  options: EfficiencyOptions,
  log: (line: string) => void,
): Promise<EfficiencyFigures> {
  // one task an invocation: `workers` is then the number of tasks that can run at once
  const bench = await startBenchStack(emulators, { workers: options.workers, tasksPerInvocation: 1 });
  try {
    await bench.client.putWorkflow("bench-sleep", {
      name: "bench-sleep",
      tasks: {
        sleep: {
          action: "bench.sleep",
          input: { seconds: "{% input.seconds %}" },
          timeoutSeconds: Math.max(10, Math.ceil(options.taskSeconds * 4)),
        },
      },
    });
    const indexes = Array.from({ length: options.tasks }, (_, i) => i);
    const runIds = await mapLimit(
      indexes,
      CLIENTS,
      async () =>
        (
          await bench.client.createRun("bench-sleep", {
            input: { seconds: options.taskSeconds },
            start: false,
          })
        ).runId,
    );
    executions.reset();
    const started = Date.now();
    const cpu = process.cpuUsage();
    await mapLimit(runIds, CLIENTS, (runId) => bench.client.triggerRun(runId));
    const triggeredMs = Date.now() - started;
    // the actions' own count first, then the runs through the API (the figures come from the runs'
    // own endedAt; the floor's runs below are not asked about either)
    await untilExecuted(options.tasks, 600_000);
    const runs = await waitForRuns(bench, runIds, 600_000);
    const nodeCpuMsPerTask = round(cpuMsSince(cpu) / options.tasks, 2);
    const failed = runs.filter((run) => run.status !== "succeeded");
    if (failed.length > 0) throw new Error(`${failed.length} run(s) did not succeed: ${failed[0]?.status}`);
    const endedAt = Math.max(...runs.map((run) => Date.parse(run.endedAt ?? "")));
    const figures = efficiencyFigures({
      tasks: options.tasks,
      taskSeconds: options.taskSeconds,
      workers: options.workers,
      actualSeconds: (endedAt - started) / 1000,
      executions: executions.total,
    });
    // the same runs on the floor's requests alone, right after: the most any executor on these
    // primitives could reach here
    const floor = await floorRuns(bench.stack, { ...options, clients: CLIENTS });
    const floorEfficiency = round(figures.idealSeconds / floor.seconds, 3);
    log(
      `efficiency: ${options.tasks} tasks of ${options.taskSeconds} s on ${options.workers} workers: ` +
        `${figures.actualSeconds} s (ideal ${figures.idealSeconds} s, efficiency ${figures.efficiency}), ` +
        `${figures.executions} executions, triggers took ${triggeredMs} ms; ` +
        `the floor's requests alone: ${floor.seconds} s (efficiency ${floorEfficiency})`,
    );
    return {
      ...figures,
      nodeCpuMsPerTask,
      floorExecutor: {
        actualSeconds: floor.seconds,
        efficiency: floorEfficiency,
        nodeCpuMsPerTask: round(floor.nodeCpuMs / options.tasks, 2),
      },
    };
  } finally {
    await bench.stop();
  }
}
