/**
 * `run` and `watch`: follows a run until it ends. On a terminal, a live view redrawn in place
 * (log-update): the run's header and one line per task, with-items tasks with a progress bar and
 * their counts. Elsewhere, a plain line per change. With `--json`, only the final run, as JSON.
 */
import { isOnceflowError, type OnceflowClient, type RunView } from "../lib/client";
import {
  type Colors,
  colorsFor,
  duration,
  errorText,
  itemsProgress,
  runElapsed,
  runHeader,
  taskLines,
} from "./render";

export type Mode = "tty" | "plain" | "json";

export interface WatchOptions {
  mode: Mode;
  intervalMs: number;
  /** 0: no limit. */
  timeoutMs: number;
  /** Print the run's output (or error) at the end (`run` does; `watch` too). */
  showResult: boolean;
}

/** 0 succeeded, 1 failed, 2 cancelled or timed out. */
export function exitCodeOf(run: RunView): number {
  if (run.status === "succeeded") return 0;
  if (run.status === "cancelled") return 2;
  const code = (run.error as { code?: string } | null)?.code;
  return code === "RunTimedOut" ? 2 : 1;
}

/** The tasks of the run's definition, in its order, when the latest version is the run's. */
async function definitionOrder(client: OnceflowClient, run: RunView): Promise<string[]> {
  try {
    const workflow = await client.getWorkflow(run.workflow);
    return workflow.version === run.version ? Object.keys(workflow.definition.tasks) : [];
  } catch {
    return [];
  }
}

/** Follows the run to its end and returns the exit code. */
export async function watchRun(
  client: OnceflowClient,
  runId: string,
  options: WatchOptions,
): Promise<number> {
  const out = process.stdout;
  const c = colorsFor(out, options.mode === "tty");
  const first = await client.getRun(runId);
  const order = options.mode === "json" ? [] : await definitionOrder(client, first);
  const view =
    options.mode === "tty"
      ? new LiveView(c, order, (await import("log-update")).createLogUpdate)
      : options.mode === "plain"
        ? new PlainView(c)
        : undefined;
  const stop = () => {
    view?.close();
    process.stderr.write(`\nstopped watching; run ${runId} goes on\n`);
    process.exit(130);
  };
  process.once("SIGINT", stop);
  let run: RunView;
  try {
    view?.show(first);
    run = isEnded(first)
      ? first
      : await client.waitForRun(runId, {
          timeoutMs: options.timeoutMs,
          intervalMs: options.intervalMs,
          onPoll: (r) => view?.show(r),
        });
  } catch (error) {
    view?.close();
    if (isOnceflowError(error, "WaitTimedOut")) {
      const last = error.fields.run as RunView;
      if (options.mode === "json") out.write(`${JSON.stringify(last, null, 2)}\n`);
      process.stderr.write(
        `run ${runId} is still ${last.status} after ${duration(options.timeoutMs)}: stopped waiting\n`,
      );
      return 2;
    }
    throw error;
  } finally {
    process.off("SIGINT", stop);
  }
  view?.close();
  if (options.mode === "json") out.write(`${JSON.stringify(run, null, 2)}\n`);
  else {
    out.write(`${summaryLine(c, run)}\n`);
    if (options.showResult) {
      if (run.status === "succeeded") out.write(`output: ${JSON.stringify(run.output, null, 2)}\n`);
      else if (run.error) out.write(`error: ${c.red(errorText(run.error))}\n`);
    }
  }
  return exitCodeOf(run);
}

const isEnded = (run: { status: string }) => ["succeeded", "failed", "cancelled"].includes(run.status);

function summaryLine(c: Colors, run: RunView): string {
  const text = `run ${run.runId} ${run.status} in ${duration(runElapsed(run))}`;
  return run.status === "succeeded" ? c.green(text) : run.status === "failed" ? c.red(text) : c.yellow(text);
}

/** Remembers when each task was first seen running and when seen ended, for the elapsed column. */
class TaskClock {
  readonly #since = new Map<string, number>();
  readonly #until = new Map<string, number>();

  see(run: RunView, now: number): void {
    for (const [name, task] of Object.entries(run.tasks)) {
      if (!this.#since.has(name) && (task.status === "running" || task.status === "queued"))
        this.#since.set(name, now);
      if (this.#since.has(name) && !this.#until.has(name) && isEnded(task)) this.#until.set(name, now);
    }
  }

  elapsed(name: string, now: number): number | undefined {
    const since = this.#since.get(name);
    return since === undefined ? undefined : (this.#until.get(name) ?? now) - since;
  }
}

/** The live view: the whole frame redrawn in place at each poll and once a second in between. */
class LiveView {
  readonly #log: ReturnType<typeof import("log-update").createLogUpdate>;
  readonly #clock = new TaskClock();
  readonly #timer: NodeJS.Timeout;
  #run: RunView | undefined;

  constructor(
    private readonly c: Colors,
    private readonly order: string[],
    // loaded only for a terminal (log-update takes a moment to load)
    createLogUpdate: typeof import("log-update").createLogUpdate,
  ) {
    this.#log = createLogUpdate(process.stdout, { showCursor: false });
    this.#timer = setInterval(() => this.#draw(), 1000);
    this.#timer.unref();
  }

  show(run: RunView): void {
    this.#run = run;
    this.#clock.see(run, Date.now());
    this.#draw();
  }

  #draw(): void {
    const run = this.#run;
    if (!run) return;
    const now = Date.now();
    const lines = [
      runHeader(this.c, run, now),
      ...taskLines(this.c, run, this.order, (t) => this.#clock.elapsed(t, now)),
    ];
    this.#log(lines.join("\n"));
  }

  close(): void {
    clearInterval(this.#timer);
    this.#draw();
    this.#log.done();
  }
}

/** Plain lines: the run's status and each task's, when they change (with-items counts at most once a second). */
class PlainView {
  readonly #said = new Map<string, string>();
  readonly #saidAt = new Map<string, number>();
  #status: string | undefined;

  constructor(private readonly c: Colors) {}

  show(run: RunView): void {
    const now = Date.now();
    const out: string[] = [];
    if (run.status !== this.#status) {
      this.#status = run.status;
      if (!isEnded(run)) out.push(`run ${run.runId} (${run.workflow} v${run.version}): ${run.status}`);
    }
    for (const [name, task] of Object.entries(run.tasks)) {
      let line = `${name}: ${task.status}`;
      if (task.items) line += ` ${itemsProgress(this.c, task.items)}`;
      else if (task.attempts && task.attempts > 1) line += ` (attempt ${task.attempts})`;
      if (task.error) line += ` ${errorText(task.error)}`;
      const before = this.#said.get(name);
      if (line === before) continue;
      // with-items counts: at most one line a second while the task's status stays the same
      const sameStatus = before?.startsWith(`${name}: ${task.status} `) ?? false;
      if (task.items && sameStatus && task.status === "running" && now - (this.#saidAt.get(name) ?? 0) < 1000)
        continue;
      this.#said.set(name, line);
      this.#saidAt.set(name, now);
      out.push(line);
    }
    if (out.length > 0) process.stdout.write(`${out.join("\n")}\n`);
  }

  close(): void {}
}
