/**
 * `npm run chaos -- --runs 200 --seed 7 [--faults duplicate,redeliver,crash=0.05]`: starts the
 * local stack with those faults, runs random workflows against a recording sink, checks the
 * invariants, prints what was injected and what was violated, and exits non-zero on a violation.
 *
 * `--deployed`: on the timeouts and sweep schedule of serverless.yml instead of shortened ones,
 * and prints what the crashes cost: each run's time to its end, and each crash's stall (from the
 * crash to the next transition of the execution it hit, stalls.ts). `--workload fanout`: every run
 * a 6-item fan-out and a successor. `--max-run-seconds N`: also fail when a run took longer.
 * `--explain`: prints the slowest run's history with the crashes that hit it.
 */
import { parseArgs } from "node:util";
import { parseChaos } from "../../infra/local/chaos";
import { consoleLog } from "../../infra/local/log";
import { startLocalStack } from "../../infra/local/stack";
import { startSink } from "../helpers/sink";
import { runChecker } from "./check";
import { chaosStackOptions } from "./stack-options";
import { percentile } from "./stalls";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "50" },
    seed: { type: "string", default: "7" },
    faults: { type: "string", default: "duplicate,redeliver,crash=0.05" },
    timeout: { type: "string", default: "600" },
    deployed: { type: "boolean", default: false },
    workload: { type: "string", default: "random" },
    "max-run-seconds": { type: "string" },
    explain: { type: "boolean", default: false },
  },
});
if (values.workload !== "random" && values.workload !== "fanout")
  throw new Error(`--workload is random or fanout, not ${values.workload}`);
const seed = Number(values.seed);
const chaos = parseChaos(values.faults, String(seed));
const stack = await startLocalStack({
  ...chaosStackOptions(chaos, { deployed: values.deployed }),
  port: 0,
  log: consoleLog({ prefix: "[stack]", minLevel: "error" }),
});
const sink = await startSink();
const started = Date.now();
let exitCode = 1;
try {
  const result = await runChecker({
    stack,
    sink,
    runs: Number(values.runs),
    seed,
    timeoutMs: Number(values.timeout) * 1000,
    workload: values.workload,
    explain: values.explain,
    log: (line) => console.log(line),
  });
  const crashes = stack.chaos?.crashes ?? [];
  const byCommand = new Map<string, number>();
  for (const c of crashes)
    byCommand.set(
      `${c.fn} ${c.when} ${c.command}`,
      (byCommand.get(`${c.fn} ${c.when} ${c.command}`) ?? 0) + 1,
    );
  console.log(
    `\nchaos check${values.deployed ? " (deployed timeouts)" : ""}: ${values.workload} workload, ${result.runs} runs (${result.limitedRuns} under a concurrency limit), ${result.calls} calls, seed ${seed}, faults "${values.faults}", ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  console.table({
    "duplicated deliveries": result.faults.duplicates,
    redeliveries: result.faults.redeliveries,
    crashes: result.faults.crashes,
    "called again after a timeout": result.cutOff.length,
    violations: result.violations.length,
  });
  if (byCommand.size > 0) console.table(Object.fromEntries([...byCommand].sort((a, b) => b[1] - a[1])));
  const seconds = (ms: number) => Number((ms / 1000).toFixed(1));
  const stalls = result.stalls.map((s) => s.ms);
  console.log("time from a run's creation to its end (s), and the stall each crash caused (s):");
  console.table({
    "run duration": {
      count: result.durationsMs.length,
      p50: seconds(percentile(result.durationsMs, 50)),
      p99: seconds(percentile(result.durationsMs, 99)),
      max: seconds(Math.max(0, ...result.durationsMs)),
    },
    "stall per crash": {
      count: stalls.length,
      p50: seconds(percentile(stalls, 50)),
      p99: seconds(percentile(stalls, 99)),
      max: seconds(Math.max(0, ...stalls)),
    },
  });
  const worst = [...result.stalls].sort((a, b) => b.ms - a.ms).slice(0, 5);
  if (worst.length > 0)
    console.table(worst.map((s) => ({ crash: s.point, execution: s.key, "stall (s)": seconds(s.ms) })));
  const maxRun = values["max-run-seconds"] ? Number(values["max-run-seconds"]) * 1000 : undefined;
  const slow = maxRun ? result.durationsMs.filter((ms) => ms > maxRun).length : 0;
  if (slow > 0) console.log(`SLOW ${slow} run(s) took longer than ${values["max-run-seconds"]} s`);
  for (const repeat of result.cutOff)
    console.log(`called again after an attempt was cut off (at-least-once, not a violation): ${repeat}`);
  for (const violation of result.violations) console.log(`VIOLATION ${violation}`);
  exitCode = result.violations.length > 0 || slow > 0 ? 1 : 0;
} finally {
  await sink.close();
  await stack.stop();
}
process.exit(exitCode);
