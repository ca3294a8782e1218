/**
 * `npm run bench [-- SCENARIO...] [--json FILE] [options]`: onceflow's benchmarks. Starts
 * DynamoDB Local and the SQS emulator itself, runs each scenario on a local stack of its own, prints
 * a table and writes the figures to FILE. Scenarios: efficiency, fanout, cost, peer (all by default).
 * A benchmark, not a test: it fails only when a run over-executes (duplicates, a successor run
 * twice) or does not finish, never because the machine is slow.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type CostOptions, runCost } from "./cost";
import { runEfficiency } from "./efficiency";
import { runFanout } from "./fanout";
import { machine, markdownTable, type Row } from "./figures";
import { runPeer } from "./peer";
import { startEmulators } from "./setup";

const SCENARIOS = ["efficiency", "fanout", "cost", "peer"] as const;
type Scenario = (typeof SCENARIOS)[number];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: "string" },
    large: { type: "boolean", default: false },
    tasks: { type: "string", default: "320" },
    "task-seconds": { type: "string", default: "1,0.1" },
    workers: { type: "string", default: "16" },
    "tasks-per-invocation": { type: "string" },
    items: { type: "string" },
    concurrency: { type: "string", default: "100" },
    runs: { type: "string", default: "5" },
    "peer-runs": { type: "string", default: "3" },
    "plain-runs": { type: "string", default: "100" },
    "max-running": { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  console.log(`npm run bench -- [${SCENARIOS.join("|")}...] [--json FILE] [--large]
  efficiency  --tasks 320 --task-seconds 1,0.1 --workers 16
  fanout      --items 1000 (10000 with --large) --concurrency 100 --runs 5 --workers 16 [--max-running N]
  cost        --items 1000 --concurrency 100 --plain-runs 100 --workers 16 [--max-running N]
              --tasks-per-invocation: worker batch size (default serverless.yml's, 10)
              --max-running: a concurrency limit (limits.actions) on the items' action
  peer        --items 1000 --peer-runs 3 --workers 16 (BullMQ on a local redis-server)`);
  process.exit(0);
}

const unknown = positionals.filter((p) => !SCENARIOS.includes(p as Scenario));
if (unknown.length > 0)
  throw new Error(`unknown scenario(s) ${unknown.join(", ")}: use ${SCENARIOS.join(", ")}`);
const chosen: Scenario[] = positionals.length > 0 ? (positionals as Scenario[]) : [...SCENARIOS];

const positive = (name: string, value: string | undefined): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, not "${value}"`);
  return n;
};
const workers = positive("workers", values.workers);
const tasksPerInvocation =
  values["tasks-per-invocation"] === undefined
    ? undefined
    : positive("tasks-per-invocation", values["tasks-per-invocation"]);
const concurrency = positive("concurrency", values.concurrency);
const fanoutItems = positive("items", values.items ?? (values.large ? "10000" : "1000"));
const peerItems = positive("items", values.items ?? "1000");
const maxRunning =
  values["max-running"] === undefined ? undefined : positive("max-running", values["max-running"]);
const limited = maxRunning ? `, maxRunning ${maxRunning}` : "";

const log = (line: string) => console.log(line);
const rows: Row[] = [];
/** One table row per figure of a scenario. */
const figureRows = (at: string, figures: Record<string, number | string>): Row[] =>
  Object.entries(figures).map(([figure, value]) => ({ scenario: at, figure, value }));
const problems: string[] = [];
const report: Record<string, unknown> = {
  machine: machine(),
  command: `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim(),
  startedAt: new Date().toISOString(),
};

const started = Date.now();
const emulators = await startEmulators();
let exitCode = 0;
try {
  for (const scenario of chosen) {
    if (scenario === "efficiency") {
      const results = [];
      for (const taskSeconds of (values["task-seconds"] as string).split(",").map(Number)) {
        const figures = await runEfficiency(
          emulators,
          {
            tasks: positive("tasks", values.tasks),
            taskSeconds: positive("task-seconds", String(taskSeconds)),
            workers,
          },
          log,
        );
        results.push(figures);
        const at = `efficiency (${figures.tasks} × ${taskSeconds} s, ${workers} workers)`;
        rows.push(
          ...figureRows(at, {
            idealSeconds: figures.idealSeconds,
            actualSeconds: figures.actualSeconds,
            efficiency: figures.efficiency,
            "efficiency, floor's requests alone": figures.floorExecutor.efficiency,
            "node CPU ms per task": figures.nodeCpuMsPerTask,
            "floor's requests alone: node CPU ms per task": figures.floorExecutor.nodeCpuMsPerTask,
            executions: figures.executions,
            duplicates: figures.duplicates,
          }),
        );
        if (figures.duplicates !== 0)
          problems.push(`efficiency at ${taskSeconds} s: ${figures.duplicates} duplicates`);
      }
      report.efficiency = results;
    } else if (scenario === "fanout") {
      const runs = positive("runs", values.runs);
      const figures = await runFanout(
        emulators,
        { items: fanoutItems, concurrency, runs, workers, tasksPerInvocation, maxRunning },
        log,
      );
      report.fanout = figures;
      const at = `fanout (${fanoutItems} items, concurrency ${concurrency}${limited}, ${runs} runs)`;
      rows.push(
        ...figureRows(at, {
          itemsPerSecond: figures.itemsPerSecond,
          "storeLimit itemsPerSecond": figures.storeLimit?.itemsPerSecond ?? "-",
          storeLimitRatio: figures.storeLimitRatio ?? "-",
          "floor's requests alone: itemsPerSecond": figures.floorExecutor?.itemsPerSecond ?? "-",
          "floor's requests alone: storeLimitRatio": figures.floorExecutor?.storeLimitRatio ?? "-",
          "node CPU ms per item": figures.nodeCpuMsPerItem,
          "floor's requests alone: node CPU ms per item": figures.floorExecutor?.nodeCpuMsPerItem ?? "-",
          "fanInLatencyMs p50": figures.fanInLatencyMs.p50,
          "fanInLatencyMs p99": figures.fanInLatencyMs.p99,
          successorExecutions: figures.successorExecutions.join(", "),
        }),
      );
      if (figures.successorExecutions.some((n) => n !== 1))
        problems.push(`fanout: successor executions ${figures.successorExecutions.join(", ")}`);
      if (figures.itemDuplicates !== 0)
        problems.push(`fanout: ${figures.itemDuplicates} duplicate item executions`);
    } else if (scenario === "cost") {
      const options: CostOptions = {
        items: peerItems,
        concurrency,
        plainRuns: positive("plain-runs", values["plain-runs"]),
        workers,
        tasksPerInvocation,
        maxRunning,
      };
      const figures = await runCost(emulators, options, log);
      report.cost = figures;
      for (const shape of figures.shapes) {
        const name =
          shape.shape === "plain"
            ? "runs of one task"
            : shape.shape.startsWith("fanout")
              ? `fan-out of ${options.items}`
              : shape.shape.startsWith("plain, ")
                ? `runs of one task, ${shape.shape.slice("plain, ".length)}`
                : `runs of a ${shape.shape}`;
        const at = `cost per task (${name}${limited})`;
        rows.push(
          ...figureRows(at, {
            readUnits: shape.readUnits,
            writeUnits: shape.writeUnits,
            "writeUnits (indexes)": shape.indexWriteUnits,
            sqsRequests: shape.sqsRequests,
            lambdaInvocations: shape.lambdaInvocations,
            usdPerMillionTasks: shape.usdPerMillionTasks,
            floorUsdPerMillionTasks: shape.floorUsdPerMillionTasks,
            stepFunctionsStandardUsdPerMillion: shape.stepFunctionsStandardUsdPerMillion,
          }),
        );
        console.log(`\nwhere the calls go, ${shape.shape} (per task execution):`);
        console.table(shape.calls);
        console.table(shape.functions);
      }
    } else if (scenario === "peer") {
      const runs = positive("peer-runs", values["peer-runs"]);
      const figures = await runPeer(emulators, { items: peerItems, concurrency, runs, workers }, log);
      report.peer = figures;
      const at = `peer (${peerItems} items, ${workers} workers, ${runs} runs each, alternating)`;
      rows.push(
        ...figureRows(at, {
          itemsPerSecond: figures.itemsPerSecond,
          bullmqItemsPerSecond: figures.bullmqItemsPerSecond,
          ratio: figures.ratio,
        }),
      );
      if (figures.successorExecutions.some((n) => n !== 1))
        problems.push(`peer: successor executions ${figures.successorExecutions.join(", ")}`);
    }
  }
  report.durationSeconds = Math.round((Date.now() - started) / 1000);
  report.problems = problems;
  console.log(`\n${markdownTable(rows)}\n`);
  const m = report.machine as ReturnType<typeof machine>;
  console.log(
    `${m.cores} cores, ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}; ${report.durationSeconds} s`,
  );
  if (values.json) {
    writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`figures written to ${values.json}`);
  }
  for (const problem of problems) console.log(`OVER-EXECUTION: ${problem}`);
  exitCode = problems.length > 0 ? 1 : 0;
} catch (error) {
  console.error(error);
  exitCode = 1;
} finally {
  await emulators.stop();
}
process.exit(exitCode);
