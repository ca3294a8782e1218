import { outbound, startTasks } from "../definition/graph";
import type { WorkflowDefinition } from "../definition/types";
import { ExpressionError } from "../errors";
import { evaluateTemplate } from "../expression";
import {
  type AdvanceMessage,
  type CompletionMessage,
  isLook,
  sendLooks,
  sendTasks,
  type TaskMessage,
} from "../queue";
import { keys } from "../store/keys";
import { type RunRecord, readItem, readRunState, readTasks } from "../store/run-state";
import { getWorkflowVersion, type WorkflowVersion } from "../workflows";
import { cancelRemaining, cancelUnwritten } from "./cancel";
import { countDown } from "./countdown";
import { dispatch, planTasks } from "./dispatch";
import { endRun } from "./end-run";
import { evaluate, type TaskStatus } from "./evaluate";
import { startFanOut } from "./fanout";
import { fill } from "./fill";
import { point } from "./interleave";
import { type Promoted, releaseWhenIdle } from "./lock";
import { lookAtItems, lookAtTasks } from "./look";
import { mentions, recordsOnRun, templateContext, unwrittenOnRun } from "./plan";
import { type ErrorInfo, type FanOutRecord, isFanOut, type TaskItem } from "./task-record";
import { wakeSweeper } from "./tick";

export type AdvanceOutcome =
  | { kind: "idle" }
  /** `held`: a dispatched task's message not sent, for the caller to run (AdvanceOptions.hold). */
  | { kind: "dispatched"; tasks: string[]; held?: TaskMessage }
  | { kind: "ended"; status: "succeeded" | "failed" };

export interface AdvanceOptions {
  /** A look of the sweeper's: always the whole path, whatever the completions. */
  look?: boolean;
  /**
   * Return one dispatched plain task's message instead of sending it (`held`): a worker that
   * settled the task before it runs its successor itself (work.ts), without a queue hop.
   */
  hold?: boolean;
}

/** Rounds of "dispatch, then look again" in one call: a with-items task of no items ends at once. */
const MAX_ROUNDS = 10;

/**
 * Advances `runId` for the messages of one batch: its completions, and the sweeper's looks. A look
 * at a with-items task re-sends its overdue items and adds the completions of its settled items not
 * counted yet (lost on their way, look.ts); a look at the run adds nothing: advancing is enough,
 * for it is level-triggered.
 */
export async function advanceOn(
  runId: string,
  messages: AdvanceMessage[],
  now = new Date(),
): Promise<AdvanceOutcome> {
  const looks = messages.filter(isLook);
  const completions = messages.filter((m): m is CompletionMessage => !isLook(m));
  for (const { task } of looks) {
    if (task === undefined) continue;
    const parent = await readItem<FanOutRecord>(keys.task(runId, task));
    if (parent) completions.push(...(await lookAtItems(parent, now)));
  }
  return advance(runId, completions, now, { look: looks.length > 0 });
}

/**
 * Moves a run forward after executions settled: counts settled items down on their with-items
 * task, refills free slots, evaluates the graph, and dispatches what is ready or ends the run.
 * Level-triggered and idempotent: a duplicate or redelivered completion finds its items counted,
 * every successor dispatched (their conditional puts fail) or the run ended (its conditional
 * update fails), and writes nothing (I3, I7).
 *
 * One shortcut: when every completion is an item that this call counted down, its task still
 * running and every free slot refilled (`counted`) or left for a later countdown (`deferred`), no
 * task of the run changed status, so there is nothing to evaluate and the run is not read. Anything else (a duplicate, a task that settled, a
 * plain task's completion, a run past its deadline, a sweeper's look) takes the whole path.
 */
export async function advance(
  runId: string,
  completions: CompletionMessage[] = [],
  now = new Date(),
  { look = false, hold = false }: AdvanceOptions = {},
): Promise<AdvanceOutcome> {
  const itemTasks = new Set(completions.filter((c) => c.item !== undefined).map((c) => c.task));
  let onlyCounted = !look && completions.length > 0 && completions.every((c) => c.item !== undefined);
  for (const task of itemTasks) {
    const counted = await countDown(
      runId,
      task,
      completions.filter((c) => c.task === task),
      now,
    );
    if (counted !== "counted" && counted !== "deferred") onlyCounted = false;
  }
  if (onlyCounted) return { kind: "idle" };
  const { run, tasks: current } = await readRunState(runId);
  // the sweeper's look: re-sends plain executions that are overdue, moves the next look up (look.ts)
  if (look && run) await lookAtTasks(run, current, now);
  // a cancel or timeout that died before its cleanup is finished by whoever looks next
  if (run?.status === "cancelled" || run?.status === "failed") await windDown(run);
  if (run?.status !== "running") return { kind: "idle" };
  if (run.deadline && run.deadline <= now.toISOString()) {
    const error = { code: "RunTimedOut", message: `the run did not finish by its deadline ${run.deadline}` };
    if (!(await end(run, "failed", null, error, { keepLock: true }))) return { kind: "idle" };
    await windDown(run);
    return { kind: "ended", status: "failed" };
  }
  const { definition } = await getWorkflowVersion(run.workflow, run.version);

  let tasks = current;
  for (const parent of tasks.filter(isFanOut)) {
    if (parent.status === "running") await fill(runId, parent.task, parent);
  }

  const dispatched: string[] = [];
  let held: TaskMessage | undefined;
  let queuedOnRun = run;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const statuses = new Map(tasks.map((t) => [t.task, t.status as TaskStatus]));
    // queued on the run without their records: as queued as those with one (dispatch.ts)
    for (const [task] of unwrittenOnRun(queuedOnRun, tasks)) statuses.set(task, "queued");
    const evaluation = evaluate(definition, statuses);
    if (evaluation.complete) {
      const ended = await finish(run, definition, tasks, evaluation.status, evaluation.unhandled);
      return ended ? { kind: "ended", status: ended } : { kind: "idle" };
    }
    if (evaluation.ready.length === 0) break;
    await point("advance:before-dispatch", { runId, ready: evaluation.ready });
    const fanOuts = evaluation.ready.filter((t) => definition.tasks[t]?.withItems !== undefined);
    const plain = evaluation.ready.filter((t) => !fanOuts.includes(t));
    const templates = evaluation.ready.map((t) => [
      definition.tasks[t]?.input,
      definition.tasks[t]?.withItems,
    ]);
    const context = await templateContext(run, tasks, mentions(templates));
    if (plain.length > 0) {
      const records = await planTasks(runId, definition, plain, context);
      const queued = await dispatch(queuedOnRun, records, now, hold && held === undefined);
      held ??= queued.held;
      dispatched.push(...Object.keys(queued.queued));
      queuedOnRun = { ...queuedOnRun, queued: { ...queuedOnRun.queued, ...queued.queued } };
    }
    for (const task of fanOuts) await startFanOut(runId, definition, task, context);
    if (fanOuts.length === 0) break;
    // a with-items task may have ended at once (no items, or items that failed to evaluate)
    dispatched.push(...fanOuts);
    tasks = await readTasks(runId);
  }
  return dispatched.length > 0 ? { kind: "dispatched", tasks: dispatched, held } : { kind: "idle" };
}

async function finish(
  run: RunRecord,
  definition: WorkflowDefinition,
  tasks: TaskItem[],
  status: "succeeded" | "failed",
  unhandled: string[],
): Promise<"succeeded" | "failed" | undefined> {
  if (status === "failed") {
    const task = unhandled[0] as string;
    const cause = tasks.find((t) => t.task === task)?.error;
    const error = {
      code: "TaskFailed",
      message: `task ${task} failed: ${cause?.message ?? "unknown error"}`,
      task,
    };
    return (await end(run, "failed", null, error)) ? "failed" : undefined;
  }
  const leaves = tasks.filter((t) => t.status === "succeeded" && outbound(definition, t.task).length === 0);
  const leafNames = new Set(leaves.map((t) => t.task));
  const needs =
    definition.output !== undefined ? mentions(definition.output) : (task: string) => leafNames.has(task);
  const context = await templateContext(run, tasks, needs);
  let output: unknown;
  let error: ErrorInfo | undefined;
  try {
    output =
      definition.output !== undefined
        ? ((await evaluateTemplate(definition.output, { ...context }, "output")) ?? null)
        : Object.fromEntries(leaves.map((t) => [t.task, context.tasks[t.task]?.output ?? null]));
  } catch (e) {
    if (!(e instanceof ExpressionError)) throw e;
    error = { code: e.code, message: `run output: ${e.message}` };
  }
  if (error) return (await end(run, "failed", null, error)) ? "failed" : undefined;
  return (await end(run, "succeeded", output)) ? "succeeded" : undefined;
}

/** Ends the run (once) and launches the run that got its concurrency-key lock, if any. */
async function end(...args: Parameters<typeof endRun>): Promise<boolean> {
  const { ended, promoted } = await endRun(...args);
  await launchPromoted(promoted);
  return ended;
}

/**
 * Sends a started run's start tasks (queued with it: start.ts), and has `advance`
 * start the ones that did not fit there (with-items tasks, or too many) on a look sent to it: a
 * fan-out of thousands of items is written there, not within the API's 29 s (under load, 1,000
 * items at the start of a run timed the create out). A look lost with an advance that died is
 * sent again by the sweeper's look at the running run, and a sweeper is looking: one is woken if
 * none is (tick.ts).
 */
export async function launch(
  run: RunRecord,
  starts: TaskMessage[],
  workflow: WorkflowVersion,
): Promise<void> {
  await Promise.all([sendTasks(starts), wakeSweeper()]);
  if (startTasks(workflow.definition).length > starts.length)
    await sendLooks([{ look: true, runId: run.runId }], `start/${run.redriveCount ?? 0}`);
}

/**
 * After a run ended early (cancelled, timed out): nothing queued runs, no slot is refilled, and
 * its concurrency-key lock passes on once its last running action ended. Idempotent: every late
 * completion of the run calls it again.
 */
export async function windDown(run: RunRecord, now = new Date()): Promise<void> {
  // the run as it is now: a dispatch may have queued tasks on it after the caller's read
  const { run: ended = run, tasks } = await readRunState(run.runId);
  await cancelRemaining(tasks, now);
  const unwritten = unwrittenOnRun(ended, tasks);
  const queuedAs = new Map(unwritten);
  for (const record of await recordsOnRun(ended, tasks, unwritten, now))
    await cancelUnwritten(record, queuedAs.get(record.task) as string, now);
  await launchPromoted(await releaseWhenIdle(ended));
}

/** Launches the run that got a concurrency-key lock and started with it (a `pending` one waits for its trigger). */
export async function launchPromoted(promoted: Promoted | undefined): Promise<void> {
  if (promoted?.start) await launch(promoted.run, promoted.start.tasks, promoted.workflow);
}
