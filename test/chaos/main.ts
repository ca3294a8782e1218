/**
 * `npm run chaos -- --runs 200 --seed 7 [--faults duplicate,redeliver,crash=0.05]`: starts the
 * local stack with those faults, runs random workflows against a recording sink, checks the
 * invariants, prints what was injected and what was violated, and exits non-zero on a violation.
 */
import { parseArgs } from "node:util";
import { parseChaos } from "../../infra/local/chaos";
import { consoleLog } from "../../infra/local/log";
import { startLocalStack } from "../../infra/local/stack";
import { startSink } from "../helpers/sink";
import { runChecker } from "./check";
import { chaosStackOptions } from "./stack-options";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "50" },
    seed: { type: "string", default: "7" },
    faults: { type: "string", default: "duplicate,redeliver,crash=0.05" },
    timeout: { type: "string", default: "600" },
  },
});
const seed = Number(values.seed);
const chaos = parseChaos(values.faults, String(seed));
const stack = await startLocalStack({
  ...chaosStackOptions(chaos),
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
    `\nchaos check: ${result.runs} runs (${result.limitedRuns} under a concurrency limit), ${result.calls} calls, seed ${seed}, faults "${values.faults}", ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  console.table({
    "duplicated deliveries": result.faults.duplicates,
    redeliveries: result.faults.redeliveries,
    crashes: result.faults.crashes,
    violations: result.violations.length,
  });
  if (byCommand.size > 0) console.table(Object.fromEntries([...byCommand].sort((a, b) => b[1] - a[1])));
  for (const violation of result.violations) console.log(`VIOLATION ${violation}`);
  exitCode = result.violations.length > 0 ? 1 : 0;
} finally {
  await sink.close();
  await stack.stop();
}
process.exit(exitCode);
