/**
 * What the CLI prints: task lines with progress bars, run headers, event lines, tables. Colours
 * come from picocolors, turned on only for a terminal (never by `CI` alone, unlike picocolors'
 * own default), so plain output has no escape codes.
 */
import Table from "cli-table3";
import { createColors } from "picocolors";
import type { RunEvent, RunStatus, RunView, TaskView } from "../lib/client";

export type Colors = ReturnType<typeof createColors>;

/** Colours for a stream: on for a terminal unless NO_COLOR; FORCE_COLOR forces them. */
export function colorsFor(stream: { isTTY?: boolean }, enabled = true): Colors {
  const env = process.env;
  const on =
    enabled && !env.NO_COLOR && (Boolean(env.FORCE_COLOR) || (stream.isTTY === true && env.TERM !== "dumb"));
  return createColors(on);
}

const BAR_WIDTH = 24;

/** `1.2s`, `42s`, `3m05s`, `1h02m`. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "";
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** How long the run has taken (so far, when it has not ended). */
export function runElapsed(
  run: Pick<RunView, "createdAt" | "startedAt" | "endedAt">,
  now = Date.now(),
): number {
  const from = Date.parse(run.startedAt ?? run.createdAt);
  const to = run.endedAt ? Date.parse(run.endedAt) : now;
  return to - from;
}

export function statusColor(c: Colors, status: string): (text: string) => string {
  switch (status) {
    case "succeeded":
      return c.green;
    case "failed":
      return c.red;
    case "cancelled":
      return c.yellow;
    case "running":
      return c.cyan;
    default:
      return c.dim;
  }
}

const SYMBOLS: Record<string, string> = {
  succeeded: "✔",
  failed: "✖",
  cancelled: "⊘",
  running: "▶",
  queued: "○",
  pending: "○",
  waiting: "◷",
};

export const symbolOf = (status: string) => SYMBOLS[status] ?? "·";

/** `{code}: {message}` of an API error object, or its JSON. */
export function errorText(error: unknown): string {
  if (error && typeof error === "object" && "message" in error) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    return code ? `${code}: ${message}` : String(message);
  }
  return error === null || error === undefined ? "" : JSON.stringify(error);
}

/** `[████████░░░░] 6/10  5 succeeded · 1 failed · 3 running · 1 queued` */
export function itemsProgress(c: Colors, items: NonNullable<TaskView["items"]>): string {
  const { total, succeeded, failed, running, queued } = items;
  const cancelled = items.cancelled ?? 0;
  const done = succeeded + failed + cancelled;
  const cells = (n: number) => (total === 0 ? 0 : Math.round((n / total) * BAR_WIDTH));
  const ok = cells(succeeded);
  const bad = Math.min(BAR_WIDTH - ok, cells(failed + cancelled));
  const bar =
    c.green("█".repeat(ok)) + c.red("█".repeat(bad)) + c.dim("░".repeat(Math.max(0, BAR_WIDTH - ok - bad)));
  const counts = [
    `${succeeded} succeeded`,
    failed > 0 ? c.red(`${failed} failed`) : `${failed} failed`,
    `${running} running`,
    `${queued} queued`,
    ...(cancelled > 0 ? [`${cancelled} cancelled`] : []),
  ];
  return `[${bar}] ${done}/${total}  ${counts.join(" · ")}`;
}

/** What a task waits for, when it waits. */
function waitingText(view: TaskView): string | undefined {
  const w = view.waitingFor;
  if (!w) return undefined;
  if ("callback" in w) return `waiting for its callback${w.until ? ` (until ${w.until})` : ""}`;
  return `waiting for a slot of ${w.action} (${w.active}/${w.maxRunning} taken${w.position ? `, position ${w.position}` : `, ${w.waiting} waiting`})`;
}

export interface TaskLineOptions {
  /** Column width of the task names. */
  nameWidth: number;
  /** How long the task has been watched running (with-items tasks), if known. */
  elapsedMs?: number;
  /** The run has ended: a task it did not reach is "not run". */
  runEnded?: boolean;
}

/** One task: symbol, name, status, and its progress, attempts, error or what it waits for. */
export function taskLine(
  c: Colors,
  name: string,
  view: TaskView | undefined,
  options: TaskLineOptions,
): string {
  if (!view)
    return c.dim(`· ${name.padEnd(options.nameWidth)}  ${options.runEnded ? "not run" : "not started"}`);
  const { status } = view;
  const color = statusColor(c, status);
  const head = `${color(symbolOf(status))} ${name.padEnd(options.nameWidth)}  ${color(status)}`;
  const parts: string[] = [];
  if (view.items) parts.push(itemsProgress(c, view.items));
  else if (view.attempts && (view.attempts > 1 || status === "running"))
    parts.push(`attempt ${view.attempts}`);
  const waiting = waitingText(view);
  if (waiting) parts.push(c.yellow(waiting));
  if (view.error) parts.push(c.red(errorText(view.error)));
  if (view.items && options.elapsedMs !== undefined) parts.push(c.dim(duration(options.elapsedMs)));
  return parts.length > 0 ? `${head}${" ".repeat(Math.max(1, 12 - status.length))}${parts.join("  ")}` : head;
}

/** `hello v1  run 01J…  running  3.2s`, with why a waiting run waits. */
export function runHeader(c: Colors, run: RunView, now = Date.now()): string {
  const color = statusColor(c, run.status);
  const parts = [
    `${c.bold(run.workflow)} v${run.version}`,
    `run ${run.runId}`,
    color(`${symbolOf(run.status)} ${run.status}`),
    c.dim(duration(runElapsed(run, now))),
  ];
  if (run.redriveCount) parts.push(c.dim(`redriven ${run.redriveCount}×`));
  if (run.waitingFor)
    parts.push(
      c.yellow(
        `waiting for concurrency key ${run.waitingFor.concurrencyKey} (held by ${run.waitingFor.holder ?? "nobody"}, position ${run.waitingFor.position})`,
      ),
    );
  return parts.join("  ");
}

/** The run's tasks in `order` (the definition's, when known), then any other the run has. */
export function taskNames(run: RunView, order: string[] = []): string[] {
  const names = [...order];
  for (const name of Object.keys(run.tasks)) if (!names.includes(name)) names.push(name);
  return names;
}

/** The run's task lines (tasks it has not reached: "not started"). */
export function taskLines(
  c: Colors,
  run: RunView,
  order: string[] = [],
  elapsed: (task: string) => number | undefined = () => undefined,
): string[] {
  const names = taskNames(run, order);
  const nameWidth = Math.max(4, ...names.map((n) => n.length));
  return names.map(
    (name) => `  ${taskLine(c, name, run.tasks[name], { nameWidth, elapsedMs: elapsed(name) })}`,
  );
}

/** `12:00:01.234  TaskSucceeded   greet[3]  attempt 1  {...}` */
export function eventLine(c: Colors, event: RunEvent): string {
  const time = new Date(event.at);
  const clock = Number.isNaN(time.getTime())
    ? event.at
    : `${time.toTimeString().slice(0, 8)}.${String(time.getMilliseconds()).padStart(3, "0")}`;
  const where =
    event.task === undefined ? "" : `${event.task}${event.item === undefined ? "" : `[${event.item}]`}`;
  const paint = event.type.endsWith("Failed") ? c.red : event.type.endsWith("Succeeded") ? c.green : String;
  const type = paint(event.type) + " ".repeat(Math.max(0, 16 - event.type.length));
  const parts = [c.dim(clock), type, where];
  if (event.attempt !== undefined) parts.push(c.dim(`attempt ${event.attempt}`));
  if (event.detail !== undefined) parts.push(c.dim(JSON.stringify(event.detail)));
  return parts
    .filter((p) => p !== "")
    .join("  ")
    .trimEnd();
}

/** `2025-01-02 13:04:05` (local time) of an ISO timestamp. */
export function when(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A borderless table (cli-table3), header in bold when colours are on. */
export function table(c: Colors, head: string[], rows: string[][]): string {
  const t = new Table({
    head: head.map((h) => c.bold(h)),
    chars: {
      top: "",
      "top-mid": "",
      "top-left": "",
      "top-right": "",
      bottom: "",
      "bottom-mid": "",
      "bottom-left": "",
      "bottom-right": "",
      left: "",
      "left-mid": "",
      mid: "",
      "mid-mid": "",
      right: "",
      "right-mid": "",
      middle: "  ",
    },
    style: { head: [], border: [], "padding-left": 0, "padding-right": 0 },
  });
  t.push(...rows);
  return t
    .toString()
    .split("\n")
    .map((line) => line.trimEnd())
    .join("\n");
}

export const statusCell = (c: Colors, status: RunStatus | string) => statusColor(c, status)(status);
