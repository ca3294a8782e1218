/**
 * Scenario `fanout`: one with-items task over `items` items of `core.noop` (counted: `bench.noop`)
 * at `concurrency`, then one successor (also counted). Measured per run from the create request to
 * the run's `endedAt`; the fan-in latency is read from the run's history: the last item's
 * `TaskSucceeded` to the successor's `TaskStarted` (its claim). Then the same fan-outs on the
 * floor's requests alone (floor-executor.ts), and the store's limit (store-limit.ts) around them.
 */
import { executions } from "./actions";
import { cpuMsSince, percentile, round } from "./figures";
import { type FloorRun, floorFanout } from "./floor-executor";
import { type BenchStack, type Emulators, startBenchStack, waitForRuns } from "./setup";
import { higherOf, measureStoreLimit, type StoreLimit, WRITES_PER_ITEM } from "./store-limit";

export interface FanoutOptions {
  items: number;
  concurrency: number;
  runs: number;
  workers: number;
  /** Tasks per worker invocation (default: serverless.yml's batchSize). */
  tasksPerInvocation?: number;
  /** A concurrency limit on the items' action (`limits.actions`), none when absent. */
  maxRunning?: number;
}

/** One measured run of the fan-out workflow. */
export interface FanoutRun {
  runId: string;
  seconds: number;
  itemsPerSecond: number;
  fanInLatencyMs: number;
  /** CPU time of this process (handlers, SQS emulator, HTTP API, pollers) from the create request to the run's end. */
  nodeCpuMs: number;
  itemExecutions: number;
  successorExecutions: number;
}

export const FANOUT_WORKFLOW = "bench-fanout";

/** The definition's `limits` for a limit of `maxRunning` on `bench.noop`; none when absent. */
export const noopLimit = (maxRunning?: number) =>
  maxRunning ? { limits: { actions: { "bench.noop": { maxRunning } } } } : {};

/** Registers the fan-out workflow; `maxRunning` limits its items' action (the successor's too). */
export async function registerFanout(
  bench: BenchStack,
  concurrency: number,
  maxRunning?: number,
): Promise<void> {
  await bench.client.putWorkflow(FANOUT_WORKFLOW, {
    name: FANOUT_WORKFLOW,
    ...noopLimit(maxRunning),
    tasks: {
      each: {
        action: "bench.noop",
        withItems: "{% [1..input.n] %}",
        concurrency,
        next: [{ when: "succeeded", do: ["after"] }],
      },
      after: { action: "bench.noop" },
    },
  });
}

/** Runs the fan-out workflow once over `items` items and reads its figures. */
export async function fanoutOnce(bench: BenchStack, items: number): Promise<FanoutRun> {
  const started = Date.now();
  const cpu = process.cpuUsage();
  const { runId } = await bench.client.createRun(FANOUT_WORKFLOW, { input: { n: items } });
  const [run] = await waitForRuns(bench, [runId], 1_800_000);
  const nodeCpuMs = cpuMsSince(cpu);
  if (run?.status !== "succeeded") throw new Error(`fan-out run ${runId} ended ${run?.status}`);
  const seconds = (Date.parse(run.endedAt ?? "") - started) / 1000;
  const events = await bench.client.getEvents(runId);
  const lastItem = events
    .filter((e) => e.type === "TaskSucceeded" && e.task === "each" && e.item !== undefined)
    .reduce((last, e) => Math.max(last, Date.parse(e.at)), 0);
  const claim = events.find((e) => e.type === "TaskStarted" && e.task === "after");
  if (!claim) throw new Error(`fan-out run ${runId}: the successor never started`);
  return {
    runId,
    seconds: round(seconds, 3),
    itemsPerSecond: round(items / seconds, 1),
    fanInLatencyMs: Date.parse(claim.at) - lastItem,
    nodeCpuMs,
    itemExecutions: executions.countFor(`${runId}/each/`),
    successorExecutions: executions.countFor(`${runId}/after/`),
  };
}

/** The scenario's figures over its runs. */
export function fanoutFigures(
  items: number,
  concurrency: number,
  runs: FanoutRun[],
  maxRunning?: number,
  storeLimit?: StoreLimit,
  floorRuns: FloorRun[] = [],
) {
  const rate = (ofRuns: { seconds: number }[]) =>
    round((items * ofRuns.length) / ofRuns.reduce((sum, r) => sum + r.seconds, 0), 1);
  const cpuPerItem = (ofRuns: { nodeCpuMs: number }[]) =>
    round(ofRuns.reduce((sum, r) => sum + r.nodeCpuMs, 0) / (items * ofRuns.length), 2);
  const latencies = runs.map((r) => r.fanInLatencyMs);
  const itemsPerSecond = rate(runs);
  const floorItemsPerSecond = floorRuns.length > 0 ? rate(floorRuns) : null;
  return {
    items,
    concurrency,
    maxRunning: maxRunning ?? null,
    runs: runs.length,
    itemsPerSecond,
    /** The store's limit measured in the same run (store-limit.ts), and this rate against it. */
    storeLimit: storeLimit ?? null,
    storeLimitRatio: storeLimit ? round(itemsPerSecond / storeLimit.itemsPerSecond, 2) : null,
    /**
     * This process's CPU time per item: on this machine every handler, the SQS emulator and the
     * pollers share its one thread, so items a second is about 1,000 over this.
     */
    nodeCpuMsPerItem: cpuPerItem(runs),
    /**
     * The floor's own requests for the same fan-out, timed in the same run (floor-executor.ts): the
     * most any executor on these primitives could carry here, against the store's limit, and
     * onceflow's rate against it.
     */
    floorExecutor: floorItemsPerSecond
      ? {
          itemsPerSecond: floorItemsPerSecond,
          storeLimitRatio: storeLimit ? round(floorItemsPerSecond / storeLimit.itemsPerSecond, 2) : null,
          onceflowRatio: round(itemsPerSecond / floorItemsPerSecond, 2),
          nodeCpuMsPerItem: cpuPerItem(floorRuns),
          perRun: floorRuns,
        }
      : null,
    fanInLatencyMs: {
      p50: round(percentile(latencies, 50) ?? Number.NaN, 1),
      p99: round(percentile(latencies, 99) ?? Number.NaN, 1),
    },
    successorExecutions: runs.map((r) => r.successorExecutions),
    itemDuplicates: runs.reduce((sum, r) => sum + r.itemExecutions - items, 0),
    perRun: runs,
  };
}

export type FanoutFigures = ReturnType<typeof fanoutFigures>;

export async function runFanout(
  emulators: Emulators,
  options: FanoutOptions,
  log: (line: string) => void,
): Promise<FanoutFigures> {
  const bench = await startBenchStack(emulators, {
    workers: options.workers,
    tasksPerInvocation: options.tasksPerInvocation,
  });
  try {
    await registerFanout(bench, options.concurrency, options.maxRunning);
    const limits = [await measureStoreLimit(bench)];
    const runs: FanoutRun[] = [];
    for (let i = 0; i < options.runs; i++) {
      const run = await fanoutOnce(bench, options.items);
      log(
        `fanout ${i + 1}/${options.runs}: ${options.items} items in ${run.seconds} s ` +
          `(${run.itemsPerSecond} items/s), fan-in ${run.fanInLatencyMs} ms, ` +
          `successor ran ${run.successorExecutions}x, items ran ${run.itemExecutions}x`,
      );
      runs.push(run);
    }
    // the same fan-out on the floor's requests alone; a concurrency limit is no part of the floor,
    // so with one there is nothing like it to time
    const floorRuns: FloorRun[] = [];
    if (!options.maxRunning) {
      for (let i = 0; i < options.runs; i++) {
        const run = await floorFanout(bench.stack, {
          items: options.items,
          concurrency: options.concurrency,
          workers: options.workers,
          tasksPerInvocation: options.tasksPerInvocation,
        });
        log(
          `floor ${i + 1}/${options.runs}: ${options.items} items in ${run.seconds} s (${run.perSecond} items/s)`,
        );
        floorRuns.push({ seconds: run.seconds, perSecond: run.perSecond, nodeCpuMs: run.nodeCpuMs });
      }
    }
    // measured again after the runs: DynamoDB Local's JVM warms up, and a first measurement on a
    // cold one understates the store (185 against 380 items a second here); the higher one counts
    limits.push(await measureStoreLimit(bench));
    const storeLimit = higherOf(limits);
    log(
      `store limit: ${storeLimit.conditionalPutsPerSecond} conditional puts/s from ${storeLimit.clients} clients ` +
        `(before and after the runs: ${storeLimit.measuredPutsPerSecond.join(", ")}), ` +
        `÷ ${WRITES_PER_ITEM} = ${storeLimit.itemsPerSecond} items/s`,
    );
    return fanoutFigures(options.items, options.concurrency, runs, options.maxRunning, storeLimit, floorRuns);
  } finally {
    await bench.stop();
  }
}
