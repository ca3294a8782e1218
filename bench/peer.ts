/**
 * Scenario `peer`: the same fan-out and fan-in on BullMQ, side by side with onceflow in the same
 * process and the same run of the benchmark. BullMQ: a `FlowProducer` adds one parent with `items`
 * children (no-op jobs); a worker with the same concurrency as onceflow's worker invocations runs
 * the children, and the parent (the successor) runs once they are all done. The two alternate,
 * run by run, so that neither gets a quieter machine.
 */
import { FlowProducer, Worker } from "bullmq";
import { type FanoutRun, fanoutOnce, registerFanout } from "./fanout";
import { round } from "./figures";
import { startRedis } from "./redis";
import { type Emulators, startBenchStack } from "./setup";

export interface PeerOptions {
  items: number;
  concurrency: number;
  runs: number;
  workers: number;
}

interface BullmqRun {
  seconds: number;
  itemsPerSecond: number;
  parentExecutions: number;
  childExecutions: number;
}

export async function runPeer(emulators: Emulators, options: PeerOptions, log: (line: string) => void) {
  const redis = await startRedis(log);
  const connection = { host: "127.0.0.1", port: redis.port, maxRetriesPerRequest: null };
  const bench = await startBenchStack(emulators, { workers: options.workers });
  const flows = new FlowProducer({ connection });
  let childExecutions = 0;
  const parents = new Map<string, { executions: number; done: () => void }>();
  const children = new Worker(
    "bench-items",
    async () => {
      childExecutions++;
      return null;
    },
    { connection, concurrency: options.workers },
  );
  const parentWorker = new Worker(
    "bench-parent",
    async (job) => {
      const parent = parents.get(job.data.run as string);
      if (parent) {
        parent.executions++;
        parent.done();
      }
      return null;
    },
    { connection, concurrency: 1 },
  );
  try {
    await Promise.all([children.waitUntilReady(), parentWorker.waitUntilReady()]);
    await registerFanout(bench, options.concurrency);
    const onceflowRuns: FanoutRun[] = [];
    const bullmqRuns: BullmqRun[] = [];
    for (let i = 0; i < options.runs; i++) {
      const run = await fanoutOnce(bench, options.items);
      onceflowRuns.push(run);
      log(
        `peer ${i + 1}/${options.runs}: onceflow ${options.items} items in ${run.seconds} s (${run.itemsPerSecond}/s)`,
      );

      const runKey = `run-${i}`;
      childExecutions = 0;
      const finished = new Promise<void>((resolve) => parents.set(runKey, { executions: 0, done: resolve }));
      const started = Date.now();
      await flows.add({
        name: "parent",
        queueName: "bench-parent",
        data: { run: runKey },
        children: Array.from({ length: options.items }, (_, index) => ({
          name: "item",
          queueName: "bench-items",
          data: { index },
        })),
      });
      await finished;
      const seconds = (Date.now() - started) / 1000;
      // a second execution of the parent would show up here
      await new Promise((resolve) => setTimeout(resolve, 200));
      const bullmq = {
        seconds: round(seconds, 3),
        itemsPerSecond: round(options.items / seconds, 1),
        parentExecutions: parents.get(runKey)?.executions ?? 0,
        childExecutions,
      };
      bullmqRuns.push(bullmq);
      log(
        `peer ${i + 1}/${options.runs}: BullMQ ${options.items} items in ${bullmq.seconds} s (${bullmq.itemsPerSecond}/s)`,
      );
    }
    const total = (runs: { seconds: number }[]) => runs.reduce((sum, r) => sum + r.seconds, 0);
    const itemsPerSecond = round((options.items * options.runs) / total(onceflowRuns), 1);
    const bullmqItemsPerSecond = round((options.items * options.runs) / total(bullmqRuns), 1);
    return {
      items: options.items,
      workers: options.workers,
      runs: options.runs,
      itemsPerSecond,
      bullmqItemsPerSecond,
      ratio: round(itemsPerSecond / bullmqItemsPerSecond, 4),
      successorExecutions: onceflowRuns.map((r) => r.successorExecutions),
      bullmqParentExecutions: bullmqRuns.map((r) => r.parentExecutions),
      perRun: { onceflow: onceflowRuns, bullmq: bullmqRuns },
    };
  } finally {
    await Promise.allSettled([children.close(), parentWorker.close(), flows.close()]);
    await bench.stop();
    await redis.stop();
  }
}

export type PeerFigures = Awaited<ReturnType<typeof runPeer>>;
