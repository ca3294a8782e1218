/**
 * `npm run sim -- --schedules 2000 --seed 1 [--faults all|none|duplicate|redeliver|crash|stall|every]`:
 * runs seeded schedules of the deterministic simulation (test/helpers/sim) and prints, per fault
 * mode, what was injected and what was violated; exits non-zero on a violation. A failing seed
 * is reproduced alone with `--schedules 1 --seed N`.
 */
import { parseArgs } from "node:util";
import { FAULT_MODES, type FaultMode, simulateMany } from "../helpers/sim/simulation";

const { values } = parseArgs({
  options: {
    schedules: { type: "string", default: "1000" },
    seed: { type: "string", default: "1" },
    faults: { type: "string", default: "every" },
  },
});
const modes = (
  values.faults === "every" ? Object.keys(FAULT_MODES) : values.faults.split(",")
) as FaultMode[];
for (const mode of modes) if (!(mode in FAULT_MODES)) throw new Error(`unknown fault mode ${mode}`);

const rows: Record<string, unknown> = {};
const violations: string[] = [];
for (const mode of modes) {
  const s = await simulateMany(mode, Number(values.schedules), Number(values.seed));
  rows[mode] = {
    schedules: s.schedules,
    steps: s.steps,
    duplicates: s.injected.duplicates,
    redeliveries: s.injected.redeliveries,
    crashes: s.injected.crashes,
    stalls: s.injected.stalls,
    runs: Object.entries(s.outcomes)
      .sort()
      .map(([k, n]) => `${n} ${k}`)
      .join(", "),
    violations: s.violations.length,
    seconds: Number((s.ms / 1000).toFixed(1)),
  };
  violations.push(...s.violations);
}
console.table(rows);
for (const v of violations.slice(0, 50)) console.log(`VIOLATION ${v}`);
process.exit(violations.length > 0 ? 1 : 0);
