/** Pure helpers for the benchmark's figures: percentiles, rounding, the printed table. */
import { cpus, totalmem } from "node:os";

/**
 * The `p`-th percentile (0–100) of `values`, interpolating linearly between the two nearest ranks
 * (numpy's default). Undefined for no values.
 */
export function percentile(values: number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  if (p < 0 || p > 100) throw new RangeError(`percentile ${p} is not between 0 and 100`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const lowValue = sorted[low] as number;
  return lowValue + ((sorted[high] as number) - lowValue) * (rank - low);
}

/** Rounds to `digits` decimals (figures are reported, not computed further). */
export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** CPU time (user and system) of this process since `start` (a `process.cpuUsage()`), in ms. */
export function cpuMsSince(start: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(start);
  return round((user + system) / 1000, 1);
}

/** Efficiency figures of the task over-execution scenario (F3). */
export function efficiencyFigures(input: {
  tasks: number;
  taskSeconds: number;
  workers: number;
  actualSeconds: number;
  executions: number;
}) {
  const idealSeconds = (input.tasks * input.taskSeconds) / input.workers;
  return {
    tasks: input.tasks,
    taskSeconds: input.taskSeconds,
    workers: input.workers,
    idealSeconds: round(idealSeconds, 3),
    actualSeconds: round(input.actualSeconds, 3),
    efficiency: round(idealSeconds / input.actualSeconds, 3),
    executions: input.executions,
    duplicates: input.executions - input.tasks,
  };
}

export interface Row {
  scenario: string;
  figure: string;
  value: number | string;
}

/** A Markdown table of the rows, ready for the README. */
export function markdownTable(rows: Row[]): string {
  const cells = rows.map((r) => [r.scenario, r.figure, formatValue(r.value)]);
  const header = ["scenario", "figure", "value"];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: string[]) => `| ${c.map((cell, i) => cell.padEnd(widths[i] as number)).join(" | ")} |`;
  return [
    line(header),
    `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`,
    ...cells.map((c) => line(c)),
  ].join("\n");
}

function formatValue(value: number | string): string {
  if (typeof value === "string") return value;
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return value.toLocaleString("en-US", { maximumFractionDigits: 3 });
}

/** What the figures were measured on. */
export function machine() {
  const cpu = cpus();
  return {
    cores: cpu.length,
    cpuModel: cpu[0]?.model.trim() ?? "unknown",
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}
