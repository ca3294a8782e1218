/**
 * The deterministic simulation: the real engine (`lib/`: createRun, triggerRun, cancelRun, work,
 * advance, sweep) runs against an in-memory table and in-memory FIFO queues, and a seeded
 * scheduler decides everything else. Every AWS call of every handler is a step the scheduler
 * holds until it picks it, so one seed is one interleaving of all the handlers' calls, on a
 * virtual clock. Faults are injected per step, exactly where the issue names them:
 *
 * - `duplicate`: a delivery also goes to a second, concurrent handler call;
 * - `redeliver`: a message the handler finished comes back later (its delete was lost);
 * - `crash`: the handler dies at this call, before it takes effect or after (the call is applied
 *   and the handler never hears back); its message comes back when its visibility ends;
 * - `stall`: the handler freezes at this call for longer than its lease (a zombie), while the
 *   clock moves on and others take over;
 * - races at the API: several creates with one Idempotency-Key, several triggers of one run,
 *   and a cancel, all at once with the handlers.
 *
 * Then the invariants are checked from the store's commit log, the action's invocation log and
 * the final state (see `check`), and every message ever sent is delivered once more, after the
 * fact, to show it makes no write at all (I7).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { seededRandom } from "../../../infra/local/seeded-random";
import { registerAction } from "../../../lib/actions/registry";
import { useClients } from "../../../lib/clients";
import { canonicalJson } from "../../../lib/definition/hash";
import { advanceOn } from "../../../lib/engine/advance";
import { isCounted } from "../../../lib/engine/counted";
import { FIRST_CLAIM } from "../../../lib/engine/dispatch";
import { useHeartbeats } from "../../../lib/engine/lease";
import type { LimitRecord, SlotLimit } from "../../../lib/engine/slot";
import { sweep } from "../../../lib/engine/sweep";
import { type FanOutRecord, isFanOut, type TaskRecord } from "../../../lib/engine/task-record";
import { type WorkOutcome, work } from "../../../lib/engine/work";
import { ActionError, OnceflowError } from "../../../lib/errors";
import { useIdSource } from "../../../lib/ids";
import type { AdvanceMessage, TaskMessage } from "../../../lib/queue";
import { cancelRun, createRun, redriveRun, triggerRun } from "../../../lib/runs";
import { useSleep } from "../../../lib/store/backoff";
import { eventsOfItem, LOG_ATTRIBUTE } from "../../../lib/store/events";
import { keys } from "../../../lib/store/keys";
import type { RunRecord } from "../../../lib/store/run-state";
import { registerWorkflow } from "../../../lib/workflows";
import { randomShape, type Shape, type TaskCall, transientFailures } from "../../chaos/workflows";
import { type Clock, installVirtualClock } from "./clock";
import type { Item } from "./expressions";
import { MemoryQueues, type QueuedMessage } from "./memory-queues";
import type { TableCall, Weakening, Write } from "./memory-table";
import { MemoryTable } from "./memory-table";

export interface Faults {
  /** Probability that a delivery also goes to a second concurrent handler call. */
  duplicate: number;
  /** Probability that a finished message is delivered again later. */
  redeliver: number;
  /** Probability that a handler dies at a given AWS call. */
  crash: number;
  /** Probability that a worker freezes at a given AWS call past its lease. */
  stall: number;
}

const NO_FAULTS: Faults = { duplicate: 0, redeliver: 0, crash: 0, stall: 0 };

/** Each fault alone, and all of them together, at rates that inject many faults per schedule. */
export const FAULT_MODES = {
  none: NO_FAULTS,
  duplicate: { ...NO_FAULTS, duplicate: 0.3 },
  redeliver: { ...NO_FAULTS, redeliver: 0.3 },
  crash: { ...NO_FAULTS, crash: 0.03 },
  stall: { ...NO_FAULTS, stall: 0.03 },
  all: { duplicate: 0.2, redeliver: 0.2, crash: 0.03, stall: 0.02 },
} satisfies Record<string, Faults>;

export type FaultMode = keyof typeof FAULT_MODES;

export interface ModeSummary {
  mode: FaultMode;
  schedules: number;
  steps: number;
  injected: ScheduleResult["injected"];
  outcomes: Record<string, number>;
  violations: string[];
  ms: number;
}

/** Runs `count` schedules (seeds `firstSeed`...) under one fault mode, on a virtual clock of their own. */
export async function simulateMany(
  mode: FaultMode,
  count: number,
  firstSeed: number,
  weakened?: Weakening[],
  extra: Partial<ScheduleOptions> = {},
): Promise<ModeSummary> {
  const clock = installVirtualClock();
  const started = performance.now();
  const summary: ModeSummary = {
    mode,
    schedules: count,
    steps: 0,
    injected: { duplicates: 0, redeliveries: 0, crashes: 0, stalls: 0 },
    outcomes: {},
    violations: [],
    ms: 0,
  };
  try {
    for (let seed = firstSeed; seed < firstSeed + count; seed++) {
      const result = await simulate({ ...extra, seed, faults: FAULT_MODES[mode], clock, weakened });
      summary.steps += result.steps;
      for (const k of Object.keys(summary.injected) as (keyof ScheduleResult["injected"])[])
        summary.injected[k] += result.injected[k];
      for (const [k, n] of Object.entries(result.outcomes))
        summary.outcomes[k] = (summary.outcomes[k] ?? 0) + n;
      summary.violations.push(...result.violations.map((v) => `${mode} seed ${seed}: ${v}`));
    }
  } finally {
    clock.restore();
  }
  summary.ms = performance.now() - started;
  return summary;
}

export interface ScheduleOptions {
  seed: number;
  faults: Faults;
  clock: Clock;
  /** Random workflows run at once (default 2). */
  runs?: number;
  /** Make racing API calls (creates with one key, triggers, a cancel): default true. */
  apiRaces?: boolean;
  /** Steps after which the schedule is declared stuck. */
  maxSteps?: number;
  /** Mutation tests: condition expressions taken as always true (see MemoryTable). */
  weakened?: Weakening[];
  /** Always add the limited workflow (several runs racing for its action's slots): default 1 in 2 schedules. */
  limited?: boolean;
  /** When given, every call the in-memory table answered is appended, with its answer. */
  tableLog?: TableCall[];
  /**
   * Redrive failed runs (tasks fail for good on their first attempts, and an API actor redrives
   * what failed): default in 1 schedule in 2, chosen by a dice of its own.
   */
  redrive?: boolean;
}

export interface ScheduleResult {
  seed: number;
  steps: number;
  virtualSeconds: number;
  /** How the runs ended: succeeded, failed, timedOut, cancelled, refused (409 busy). */
  outcomes: Record<string, number>;
  injected: { duplicates: number; redeliveries: number; crashes: number; stalls: number };
  violations: string[];
}

/** The simulation's table name (the conformance test maps it to a table of DynamoDB Local). */
export const SIM_TABLE = "sim";
const TABLE = SIM_TABLE;
const TASKS_QUEUE = "sim-tasks.fifo";
const COMPLETIONS_QUEUE = "sim-completions.fifo";
const SWEEP_QUEUE = "sim-sweep";
/** serverless.yml's visibility timeouts of the two queues. */
const VISIBILITY_SECONDS = { [TASKS_QUEUE]: 900, [COMPLETIONS_QUEUE]: 360 };
const SWEEP_EVERY_MS = 60_000;
const STALL_MS = 45_000;
const MAX_VIRTUAL_MS = 12 * 3600 * 1000;

type ActorKind = "worker" | "advance" | "sweeper" | "api";

interface Actor {
  id: number;
  kind: ActorKind;
  dead: boolean;
  stalledUntil?: number;
  /** Ends the handler for good: its waiting calls never come back. */
  die(): void;
}

/** How a handler call ended: with a value, with an error, or not at all (its process died). */
type Ending = { value: unknown } | { error: unknown } | { died: true };

interface Step {
  actor: Actor;
  apply: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

interface Invocation {
  key: string;
  attempt: number;
  /** The worker that ran it (none when a replay after the schedule ran it). */
  actor?: Actor;
  /** How many commits the table had made when it ran. */
  commit: number;
  /** The action succeeded (a transient, flaky or doomed failure did not). */
  succeeded?: boolean;
}

/** One attempt's running span, in commits: claimed at commit `from`, left running at commit `to`. */
interface RunningSpan {
  execution: string;
  attempt: number;
  from: number;
  to: number;
}

/** What the simulation knows of one concurrency limit, from the executions subject to it. */
interface LimitWatch {
  pk: string;
  max: number;
  /** Executions holding a slot, and their run. */
  held: Map<string, string>;
  /** Executions parked for a slot, and their run. */
  waiting: Map<string, string>;
  spans: RunningSpan[];
  /** The span of each execution running now. */
  open: Map<string, RunningSpan>;
  /** A violation was reported at some commit: not checked at commits again. */
  broken?: boolean;
}

/** The sim action: fails its first attempts as the chaos sink does, `doomed` fails for good. */
const SIM_ACTION = "sim.call";
const simCall: TaskCall = (task, options = {}) => ({
  action: SIM_ACTION,
  input: options.item ? { task, item: "{% item %}" } : { task, doomed: options.doomed ?? false },
  retry: { maxAttempts: 10, intervalSeconds: 0.2, backoffRate: 1 },
  timeoutSeconds: 5,
});

const actors = new AsyncLocalStorage<Actor>();
let world: World | undefined;
registerAction(SIM_ACTION, (input, context) => {
  const actor = actors.getStore();
  if (!world) throw new Error("sim.call runs only inside a simulation");
  const call: Invocation = {
    key: context.idempotencyKey,
    attempt: context.attempt,
    actor,
    commit: world.commits.length,
  };
  world.invocations.push(call);
  const { doomed, flaky } = input as { doomed?: boolean; flaky?: boolean };
  if (doomed) throw new ActionError("Doomed", "doomed", { retryable: false });
  // a flaky execution (redrive schedules) fails for good on its first attempts: its run fails, and
  // a redrive (attempt numbers go on) gets past it
  if (flaky && context.attempt <= permanentFailures(context.idempotencyKey))
    throw new ActionError("Flaky", `attempt ${context.attempt} fails for good`, { retryable: false });
  if (context.attempt <= transientFailures(context.idempotencyKey))
    throw new ActionError("Transient", `attempt ${context.attempt} fails`, { retryable: true });
  call.succeeded = true;
  return { task: context.task, item: context.item ?? null };
});

/** How many first attempts of a flaky execution fail for good: 0 (6 in 10), 1 (3 in 10) or 2. */
const permanentFailures = (idempotencyKey: string) => transientFailures(`${idempotencyKey}#flaky`);

/** Redrives of one run the API actor makes at most, and API calls it spends on them. */
const MAX_REDRIVES = 4;
const MAX_REDRIVE_CALLS = 16;

/** Whether a schedule redrives: drawn apart from the schedule's own dice, so the others stay as they were. */
const redrivesIn = (seed: number) => seededRandom((seed * 2654435761) ^ 0x5eed)() < 0.5;

/** Tasks of a redrive schedule's workflows fail for good on their first attempts, now and then. */
function flaky(shape: Shape): void {
  for (const spec of Object.values(shape.definition.tasks))
    if (spec.action === SIM_ACTION && !(spec.input as { doomed?: boolean }).doomed)
      spec.input = { ...(spec.input as object), flaky: true };
}

/** One schedule's world: the store, the queues, the handlers alive, and what was observed. */
class World {
  readonly table = new MemoryTable(
    { hash: "pk", range: "sk" },
    { sweep: { hash: "sweepShard", range: "sweepAt" } },
  );
  readonly queues: MemoryQueues;
  readonly steps: Step[] = [];
  readonly alive = new Set<Actor>();
  readonly invocations: Invocation[] = [];
  /** Every committed change, in commit order. */
  readonly commits: { writes: Write[]; actor?: Actor }[] = [];
  readonly violations: string[] = [];
  readonly injected = { duplicates: 0, redeliveries: 0, crashes: 0, stalls: 0 };
  /** Concurrency limits (slot.ts), followed commit by commit: see `checkLimits`. */
  readonly limits = new Map<string, LimitWatch>();
  private nextActor = 1;
  /** The schedule is over: clients stop trying. */
  closed = false;

  constructor(
    readonly random: () => number,
    readonly faults: Faults,
    readonly clock: Clock,
    weakened: Weakening[] = [],
    tableLog?: TableCall[],
  ) {
    this.table = new MemoryTable(
      { hash: "pk", range: "sk" },
      { sweep: { hash: "sweepShard", range: "sweepAt" } },
      weakened,
      tableLog,
    );
    // the schedule drives the sweeper here: its ticks, and the kicks a launch sends, go nowhere
    this.queues = new MemoryQueues(() => clock.now(), [SWEEP_QUEUE]);
    this.table.onCommit((writes) => {
      this.commits.push({ writes, actor: actors.getStore() });
      this.checkSlots(writes);
      this.checkLimits(writes, this.commits.length - 1);
    });
  }

  /** The engine's clients: every call becomes a step of the calling handler. */
  client(target: { send(command: unknown): Promise<unknown> }) {
    return {
      send: (command: unknown) => {
        const actor = actors.getStore();
        if (!actor) return target.send(command);
        return new Promise((resolve, reject) =>
          this.steps.push({ actor, apply: () => target.send(command), resolve, reject }),
        );
      },
    };
  }

  /** Starts a handler call; every AWS call it makes waits for the scheduler. */
  spawn(kind: ActorKind, body: () => Promise<unknown>): Promise<Ending> {
    return new Promise((end) => {
      const actor: Actor = {
        id: this.nextActor++,
        kind,
        dead: false,
        die: () => {
          actor.dead = true;
          this.alive.delete(actor);
          const waiting = this.steps.filter((s) => s.actor !== actor);
          this.steps.splice(0, this.steps.length, ...waiting);
          end({ died: true });
        },
      };
      this.alive.add(actor);
      const ended = (ending: Ending) => {
        if (actor.dead) return;
        this.alive.delete(actor);
        end(ending);
      };
      actors.run(actor, body).then(
        (value) => ended({ value }),
        (error: unknown) => {
          // DynamoDB would refuse the request itself: a bug, not a fault to recover from
          if ((error as Error).name === "ValidationException")
            this.violations.push(`a ${kind} handler sent an invalid request: ${(error as Error).message}`);
          ended({ error });
        },
      );
    });
  }

  /**
   * I4 for concurrency limits, at every commit: from the executions written, which hold a slot of
   * their action's limit (`slot = "held"`), which are parked (`slot = "waiting"`) and which attempt
   * runs since which commit; then on every limit touched: `active` between 0 and maxRunning and
   * equal to the executions holding a slot, each run's `held#` equal to its executions holding
   * one, every parked execution in `waiting`, and nobody waiting while a slot is free.
   */
  private checkLimits(writes: Write[], commit: number): void {
    const touched = new Set<LimitWatch>();
    // `SIM_TRACE=1 npm run sim -- --schedules 1 --seed N --faults MODE`: the commit log of limits, executions and events
    if (process.env.SIM_TRACE)
      for (const { key, after } of writes) {
        const { status, attempt, slot, task, item } = after;
        const { version, active, nextIndex, countedBelow, countedAbove, putBack, redo, redriven } = after;
        const shown = String(key.pk).startsWith("LIMIT#")
          ? after
          : after.fanOut
            ? { status, task, version, active, nextIndex, countedBelow, countedAbove, putBack, redo }
            : { status, attempt, slot, task, item, redriven };
        console.log(commit, key.pk, key.sk, JSON.stringify(shown));
      }
    for (const { key, before, after } of writes) {
      const sk = String(key.sk);
      if (String(key.pk).startsWith("LIMIT#")) {
        const watch = this.limits.get(String(key.pk));
        if (watch) touched.add(watch);
        else this.violations.push(`I4: limit ${key.pk} written, yet no execution names it`);
        continue;
      }
      if (!(sk.startsWith("TASK#") || sk.startsWith("ITEM#")) || after.fanOut || !after.limit) continue;
      const limit = after.limit as SlotLimit;
      const pk = keys.limit(limit.workflow, limit.action).pk;
      let watch = this.limits.get(pk);
      if (!watch) {
        watch = {
          pk,
          max: limit.maxRunning,
          held: new Map(),
          waiting: new Map(),
          spans: [],
          open: new Map(),
        };
        this.limits.set(pk, watch);
      }
      touched.add(watch);
      const execution = `${after.runId}/${after.task}/${after.item ?? "-"}`;
      if (after.slot === "held") watch.held.set(execution, String(after.runId));
      else watch.held.delete(execution);
      if (after.slot === "waiting") watch.waiting.set(execution, String(after.runId));
      else watch.waiting.delete(execution);
      // the running span of each attempt: from the commit that claimed it to the one it left running in
      const was = before?.status === "running" ? Number(before.attempt) : undefined;
      const is = after.status === "running" ? Number(after.attempt) : undefined;
      if (was !== undefined && was !== is) {
        const span = watch.open.get(execution);
        if (span) span.to = commit;
        watch.open.delete(execution);
      }
      if (is !== undefined && was !== is) {
        const span: RunningSpan = { execution, attempt: is, from: commit, to: Number.POSITIVE_INFINITY };
        watch.spans.push(span);
        watch.open.set(execution, span);
      }
    }
    for (const watch of touched) {
      if (watch.broken) continue; // reported once: a broken limit would repeat itself at every commit
      const item = this.table.get(TABLE, { pk: watch.pk, sk: "LIMIT" }) as LimitRecord | undefined;
      const v = (text: string) => {
        watch.broken = true;
        this.violations.push(`I4: limit ${watch.pk} at commit ${commit}: ${text}: ${JSON.stringify(item)}`);
      };
      const active = item?.active ?? 0;
      if (active < 0 || active > watch.max) v(`active ${active}, maxRunning ${watch.max}`);
      if (active !== watch.held.size) v(`active ${active}, yet ${watch.held.size} executions hold a slot`);
      if (watch.open.size > watch.max) v(`${watch.open.size} executions running at once`);
      const heldByRun = new Map<string, number>();
      for (const runId of watch.held.values()) heldByRun.set(runId, (heldByRun.get(runId) ?? 0) + 1);
      for (const name of Object.keys(item ?? {}).filter((k) => k.startsWith("held#")))
        if (!heldByRun.has(name.slice(5))) heldByRun.set(name.slice(5), 0);
      for (const [runId, n] of heldByRun)
        if ((item?.[`held#${runId}`] ?? 0) !== n)
          v(`held#${runId} is ${item?.[`held#${runId}`]}, yet ${n} of its executions hold a slot`);
      const queued = new Set(item?.waiting ?? []);
      for (const execution of watch.waiting.keys())
        if (!queued.has(execution)) v(`${execution} is parked but not in the waiting list`);
      if (queued.size > 0 && active < watch.max) v("executions wait while a slot is free");
    }
  }

  /** I4 as it happens: a with-items task never has more unsettled items than its concurrency. */
  private checkSlots(writes: Write[]): void {
    for (const w of writes) {
      const sk = String(w.key.sk);
      if (!sk.startsWith("ITEM#") && !(sk.startsWith("TASK#") && w.after.fanOut)) continue;
      const task = sk.startsWith("ITEM#") ? sk.split("#")[1] : sk.slice(5);
      const runId = String(w.key.pk).slice(4);
      const parent = this.table.get(TABLE, keys.task(runId, task as string)) as FanOutRecord | undefined;
      if (!parent) continue;
      const prefix = keys.itemPrefix(task as string);
      const open = this.table.partition(
        TABLE,
        w.key.pk,
        (i) => String(i.sk).startsWith(prefix) && (i.status === "queued" || i.status === "running"),
      ).length;
      if (parent.active < 0 || parent.active > parent.concurrency || open > parent.concurrency)
        this.violations.push(
          `I4: ${runId}/${task} active=${parent.active}, ${open} items unsettled, concurrency ${parent.concurrency}`,
        );
    }
  }
}

const ended = (w: World, handle: RunHandle) => {
  if (handle.rejected) return true;
  const run = handle.runId
    ? (w.table.get(TABLE, keys.run(handle.runId)) as RunRecord | undefined)
    : undefined;
  return run !== undefined && ["succeeded", "failed", "cancelled"].includes(run.status);
};

/** Items the sweeper still has to look at: none once every run ended and was cleaned up. */
const sweepable = (w: World) => w.table.items(TABLE, (i) => i.sweepShard !== undefined);

/** Lets every handler run until it waits on its next AWS call (or ends). */
const quiesce = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A with-items parent's record, typed. */
const parentsOf = (items: Item[]) =>
  (items as unknown as TaskRecord[]).filter((i) => isFanOut(i)) as unknown as FanOutRecord[];

/**
 * Runs one schedule: registers random workflows, starts their runs (with API races), and steps
 * the handlers until every run ended and every queue is empty; then checks the invariants.
 */
export async function simulate(options: ScheduleOptions): Promise<ScheduleResult> {
  const random = seededRandom(options.seed);
  const w = new World(random, options.faults, options.clock, options.weakened, options.tableLog);
  const restoreClients = useClients({ db: w.client(w.table), sqs: w.client(w.queues) });
  let created = 0;
  const restoreIds = useIdSource(() => `run-${options.seed}-${++created}-${Math.floor(random() * 1e9)}`);
  // a backoff takes no real time: the schedule, not the machine, decides who goes next
  const restoreSleep = useSleep(() => Promise.resolve());
  // nor does a heartbeat fire on the machine's time: no worker here holds its lease alive, so one
  // stalled (at its action or its result's write) loses it, as a frozen worker would
  const restoreHeartbeats = useHeartbeats(() => () => {});
  const env = {
    TABLE_NAME: TABLE,
    TASKS_QUEUE_URL: TASKS_QUEUE,
    COMPLETIONS_QUEUE_URL: COMPLETIONS_QUEUE,
    SWEEP_QUEUE_URL: SWEEP_QUEUE,
  };
  const previousEnv = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  const previousRandom = Math.random;
  Math.random = random; // retry jitter and conflict backoff draw from the schedule's seed
  world = w;
  const start = options.clock.now();
  let steps = 0;
  let outcomes: Record<string, number> = {};
  try {
    const races = options.apiRaces ?? true;
    const redriving = options.redrive ?? redrivesIn(options.seed);
    const runs: RunHandle[] = [];
    // every run of a redrive schedule has flaky tasks and an API actor redriving it when it fails
    const shapeOf = (name: string) => {
      const shape = randomShape(random, name, simCall);
      if (redriving) flaky(shape);
      return shape;
    };
    const register = (shape: Shape) => {
      return registerWorkflow(shape.definition.name, JSON.stringify(shape.definition), "application/json");
    };
    const startRun = (w: World, shape: Shape, index: number, races: boolean, concurrencyKey?: string) =>
      startRunOf(w, shape, index, races, concurrencyKey, redriving);
    for (let i = 0; i < (options.runs ?? 2); i++) {
      const shape = shapeOf(`sim-${options.seed}-${i}`);
      if (random() < 0.2) shape.definition.timeoutSeconds = 1 + Math.floor(random() * 60);
      if (random() < 0.2) limit(shape, random);
      await register(shape);
      runs.push(startRun(w, shape, 0, races));
    }
    if (options.limited ?? random() < 0.5) {
      // two or three runs of one workflow racing for the slots of its action's concurrency limit
      const shape = shapeOf(`sim-${options.seed}-limited`);
      limit(shape, random);
      if (random() < 0.2) shape.definition.timeoutSeconds = 1 + Math.floor(random() * 60);
      await register(shape);
      for (let i = 2 + Math.floor(random() * 2); i > 0; i--) runs.push(startRun(w, shape, i, races));
    }
    if (random() < 0.5) {
      // three runs of one workflow with a concurrency key, two or three of them sharing it
      const shape = shapeOf(`sim-${options.seed}-keyed`);
      shape.definition.concurrencyKey = "{% input.key %}";
      shape.definition.onConcurrencyConflict = random() < 0.25 ? "reject" : "queue";
      if (random() < 0.2) shape.definition.timeoutSeconds = 1 + Math.floor(random() * 60);
      if (random() < 0.3) limit(shape, random);
      await register(shape);
      for (let i = 0; i < 3; i++) runs.push(startRun(w, shape, i, races, random() < 0.7 ? "a" : "b"));
    }

    let nextSweep = options.clock.now() + SWEEP_EVERY_MS;
    const maxSteps = options.maxSteps ?? 20_000;
    for (; steps < maxSteps; steps++) {
      await quiesce();
      const now = options.clock.now();
      const runnable = w.steps.filter((s) => !s.actor.stalledUntil || s.actor.stalledUntil <= now);
      const visible = w.queues.visible();
      if (runnable.length === 0 && visible.length === 0) {
        const finished =
          runs.every((r) => r.settled && ended(w, r)) &&
          w.alive.size === 0 &&
          w.queues.messages.size === 0 &&
          sweepable(w).length === 0;
        if (finished) break;
        // nothing can move now: the clock jumps to the next thing that can
        const stalls = w.steps.map((s) => s.actor.stalledUntil ?? Number.POSITIVE_INFINITY);
        const next = Math.min(nextSweep, w.queues.nextVisibleAt() ?? Number.POSITIVE_INFINITY, ...stalls);
        options.clock.set(Math.max(now + 1, next));
        if (options.clock.now() >= nextSweep) {
          nextSweep = options.clock.now() + SWEEP_EVERY_MS;
          void w.spawn("sweeper", () => sweep());
        }
        if (options.clock.now() - start > MAX_VIRTUAL_MS) break;
        continue;
      }
      // either a new delivery starts, or one waiting call of a handler goes ahead
      if (visible.length > 0 && (runnable.length === 0 || random() < 0.3)) {
        deliver(w, visible[Math.floor(random() * visible.length)] as QueuedMessage);
        continue;
      }
      const step = runnable[Math.floor(random() * runnable.length)] as Step;
      await take(w, step);
    }
    await quiesce();
    const runIds = runs.map((r) => r.runId);
    if (steps >= (options.maxSteps ?? 20_000) || runs.some((r) => !r.settled) || sweepable(w).length > 0)
      w.violations.push(
        `I6: the schedule did not finish in ${steps} steps (runs ${runIds.join(", ")}); ` +
          `left for the sweeper: ${JSON.stringify(sweepable(w))}`,
      );
    else {
      check(w, runs);
      checkConcurrencyKeys(w, runs);
      checkLimitsAtEnd(w);
    }
    outcomes = tally(w, runs);
    await replayEverything(w);
  } finally {
    w.closed = true;
    world = undefined;
    Math.random = previousRandom;
    restoreClients();
    restoreIds();
    restoreSleep();
    restoreHeartbeats();
    for (const [k, v] of Object.entries(previousEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  return {
    seed: options.seed,
    steps,
    virtualSeconds: (options.clock.now() - start) / 1000,
    injected: w.injected,
    outcomes,
    violations: w.violations,
  };
}

/** Every task of the shape calls the sim action: a limit of 1 to 3 on it. */
function limit(shape: Shape, random: () => number): void {
  shape.definition.limits = { actions: { [SIM_ACTION]: { maxRunning: 1 + Math.floor(random() * 3) } } };
}

/**
 * I4 for concurrency limits, once everything ended: every limit item back to `active` 0 with
 * nobody waiting (not even a stale entry: the give-back that brings `active` to 0 drops every
 * entry left, and an entry goes stale only while a slot is held) and no per-run count left. And
 * from the invocation log: each invocation of a limited action ran inside its attempt's running
 * span (unless its worker froze past its lease: a zombie, which the design allows to run the
 * action again), and never more than maxRunning of those spans held an invocation at once.
 */
function checkLimitsAtEnd(w: World): void {
  const v = (text: string) => w.violations.push(text);
  const spans = new Map<string, { watch: LimitWatch; span: RunningSpan }>();
  for (const watch of w.limits.values()) {
    const item = w.table.get(TABLE, { pk: watch.pk, sk: "LIMIT" }) as LimitRecord | undefined;
    if (!item) continue; // no execution ever claimed a slot
    const counts = Object.keys(item).filter((k) => k.startsWith("held#") || k.startsWith("served#"));
    if (item.active !== 0 || item.waiting.length > 0 || counts.length > 0)
      v(`I4: limit ${watch.pk} at the end: ${JSON.stringify(item)}`);
    for (const span of watch.spans) spans.set(`${span.execution}#${span.attempt}`, { watch, span });
  }
  const inside = new Map<LimitWatch, { span: RunningSpan; at: number }[]>();
  for (const call of w.invocations) {
    const found = spans.get(`${call.key}#${call.attempt}`);
    if (!found || !call.actor) continue; // not limited, or a replay (I7 reports it)
    const { watch, span } = found;
    if (call.commit <= span.from || call.commit > span.to) {
      if (!call.actor.stalledUntil)
        v(
          `I4: ${call.key} attempt ${call.attempt} ran at commit ${call.commit}, outside its span ${span.from}-${span.to}`,
        );
      continue;
    }
    inside.set(watch, [...(inside.get(watch) ?? []), { span, at: call.commit }]);
  }
  for (const [watch, calls] of inside) {
    for (const { at } of calls) {
      const open = new Set(calls.filter(({ span }) => span.from < at && at <= span.to).map((c) => c.span));
      if (open.size > watch.max) {
        v(
          `I4: ${open.size} invocations under limit ${watch.pk} at once at commit ${at}, maxRunning ${watch.max}`,
        );
        break;
      }
    }
  }
}

/** How the schedule's runs ended: succeeded, failed, timedOut, cancelled, or refused (409 busy). */
function tally(w: World, runs: RunHandle[]): Record<string, number> {
  const outcomes: Record<string, number> = {};
  for (const handle of runs) {
    const run = handle.runId
      ? (w.table.get(TABLE, keys.run(handle.runId)) as RunRecord | undefined)
      : undefined;
    const outcome = handle.rejected
      ? "refused"
      : run?.error?.code === "RunTimedOut"
        ? "timedOut"
        : String(run?.status);
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    if (handle.redriven.length > 0) outcomes.redriven = (outcomes.redriven ?? 0) + handle.redriven.length;
    if (handle.redriveRefused > 0)
      outcomes.redriveRefused = (outcomes.redriveRefused ?? 0) + handle.redriveRefused;
  }
  return outcomes;
}

/** Performs one waiting call, or injects the fault the dice pick there. */
async function take(w: World, step: Step): Promise<void> {
  w.steps.splice(w.steps.indexOf(step), 1);
  const { actor } = step;
  const roll = w.random();
  if (roll < w.faults.crash) {
    // the process dies: before the call takes effect, or after it (and never hears back)
    w.injected.crashes++;
    actor.die();
    if (w.random() < 0.5) await step.apply().catch(() => {});
    return;
  }
  if (roll < w.faults.crash + w.faults.stall && actor.kind !== "sweeper" && !actor.stalledUntil) {
    // a zombie: frozen at this call well past its lease; others take over meanwhile
    actor.stalledUntil = w.clock.now() + STALL_MS;
    w.steps.push(step);
    w.injected.stalls++;
    return;
  }
  step.apply().then(step.resolve, step.reject);
}

/** Hands a visible message to a handler (two, when duplicated), as the Lambda poller would. */
function deliver(w: World, message: QueuedMessage): void {
  const copies = w.random() < w.faults.duplicate ? 2 : 1;
  if (copies === 2) w.injected.duplicates++;
  if (message.queueUrl === TASKS_QUEUE) {
    w.queues.receive(message, VISIBILITY_SECONDS[TASKS_QUEUE]);
    const task = JSON.parse(message.body) as TaskMessage;
    for (let c = 0; c < copies; c++) {
      void w
        // the worker runs a successor it made ready itself, when it has time left (most often)
        .spawn("worker", () => work(task, `worker-${c}`, { roomFor: () => w.random() < 0.75 }))
        .then((ending) => {
          // an error or a death leaves the message to come back when its visibility ends
          if (!("value" in ending)) return;
          const outcome = ending.value as WorkOutcome;
          if (outcome.done) finish(w, [message]);
          // the message itself waits for the retry (ChangeMessageVisibility, batch item failure)
          else if (w.queues.messages.has(message.id))
            message.visibleAt = w.clock.now() + outcome.retryAfterSeconds * 1000;
        });
    }
    return;
  }
  // completions: a batch of up to 10 visible completions of the same run, one advance for them
  const { runId } = JSON.parse(message.body) as AdvanceMessage;
  const batch = w.queues
    .visible(COMPLETIONS_QUEUE)
    .filter((m) => (JSON.parse(m.body) as AdvanceMessage).runId === runId)
    .slice(0, 10);
  for (const m of batch) w.queues.receive(m, VISIBILITY_SECONDS[COMPLETIONS_QUEUE]);
  const messages = batch.map((m) => JSON.parse(m.body) as AdvanceMessage);
  for (let c = 0; c < copies; c++) {
    void w
      .spawn("advance", () => advanceOn(runId, messages))
      .then((ending) => {
        if ("value" in ending) finish(w, batch);
      });
  }
}

/** A handled message is deleted, unless the delete is lost (`redeliver`). */
function finish(w: World, messages: QueuedMessage[]): void {
  for (const m of messages) {
    if (!w.queues.messages.has(m.id)) continue;
    if (w.random() < w.faults.redeliver) {
      w.injected.redeliveries++;
      m.visibleAt = w.clock.now() + Math.floor(w.random() * 30_000);
    } else w.queues.delete(m);
  }
}

interface RunHandle {
  shape: Shape;
  /** Its Idempotency-Key. */
  key: string;
  /** Its concurrency key, when its workflow has one. */
  concurrencyKey?: string;
  /** The create was answered 409 ConcurrencyKeyBusy (`onConcurrencyConflict: reject`). */
  rejected?: boolean;
  runId?: string;
  /** The API calls are all answered. */
  settled: boolean;
  /** The run ids the racing creates answered with. */
  creates: Set<string>;
  /** A cancel was sent: answered 202, or 409 (which a cancel that died after taking effect may explain). */
  cancel?: "accepted" | "refused";
  /** Answers of the racing triggers: how many started the run. */
  triggersWon: number;
  /** The redrive counts the 202 answers to redrives gave. */
  redriven: number[];
  /** Redrives answered 409 (RunNotRedrivable, ConcurrencyKeyBusy). */
  redriveRefused: number;
}

/**
 * The redrive actor: whenever the run is `failed`, it redrives it (up to MAX_REDRIVES times),
 * sometimes at once (while late completions, duplicates and cleanups of the failed run are still
 * in flight), sometimes after a while, and sometimes twice concurrently. A 409 is a valid answer
 * (the run is not failed any more, it is still winding down, or another run holds its key): it
 * looks again later. It stops once the run succeeded or was cancelled, or its redrives are spent.
 */
async function redriveWhenFailed(w: World, handle: RunHandle, runId: string): Promise<void> {
  for (let calls = 0; !w.closed && calls < MAX_REDRIVE_CALLS; ) {
    const run = w.table.get(TABLE, keys.run(runId)) as RunRecord | undefined;
    if (run?.status === "succeeded" || run?.status === "cancelled") return;
    if (run?.status === "failed" && (run.redriveCount ?? 0) >= MAX_REDRIVES) return;
    if (run?.status !== "failed") {
      await quiesce();
      continue;
    }
    if (w.random() < 0.5) for (let k = Math.floor(w.random() * 40); k > 0; k--) await quiesce();
    const copies = w.random() < 0.3 ? 2 : 1;
    calls += copies;
    const answers = await Promise.all(
      Array.from({ length: copies }, () => persistently(w, () => redriveRun(runId))),
    );
    let refused = false;
    for (const a of answers) {
      if (a.value) handle.redriven.push(a.value.redriveCount);
      else if (a.error?.code === "RunNotRedrivable" || a.error?.code === "ConcurrencyKeyBusy") {
        handle.redriveRefused++;
        refused = true;
      } else throw a.error;
    }
    // refused: let what it waits for (actions winding down, the key's holder) move on first
    if (refused) for (let k = 0; k < 50; k++) await quiesce();
  }
}

/** A client call that retries until it gets an answer (a handler that died gives none). */
async function persistently<T>(
  w: World,
  call: () => Promise<T>,
): Promise<{ value?: T; error?: OnceflowError }> {
  for (;;) {
    const ending = await w.spawn("api", call);
    if ("died" in ending) continue;
    if ("value" in ending) return { value: ending.value as T };
    if (ending.error instanceof OnceflowError) return { error: ending.error };
    throw ending.error;
  }
}

/**
 * Starts one run through the API, racing: two creates with one Idempotency-Key at once; or a
 * create with `start: false` and three triggers at once; and sometimes a cancel, later.
 */
function startRunOf(
  w: World,
  shape: Shape,
  index: number,
  races: boolean,
  concurrencyKey: string | undefined,
  redriving: boolean,
): RunHandle {
  const name = shape.definition.name;
  const key = `${name}-${index}-key`;
  const handle: RunHandle = {
    shape,
    key,
    concurrencyKey,
    settled: false,
    triggersWon: 0,
    creates: new Set(),
    redriven: [],
    redriveRefused: 0,
  };
  const body = (start: boolean) => ({ input: { index, key: concurrencyKey }, start });
  const deferred = races && w.random() < 0.5;
  const creates = races ? 2 : 1;
  void (async () => {
    const created = await Promise.all(
      Array.from({ length: creates }, () => persistently(w, () => createRun(name, body(!deferred), key))),
    );
    // a create refused as busy changed nothing; one of the same key racing it may still win
    for (const c of created) {
      if (c.error && c.error.code !== "ConcurrencyKeyBusy") throw c.error;
      if (c.value) handle.creates.add(c.value.run.runId);
    }
    if (handle.creates.size === 0) {
      handle.rejected = true;
      handle.settled = true;
      return;
    }
    const runId = [...handle.creates][0] as string;
    handle.runId = runId;
    // a run created with `start: false` is started by three racing triggers; while it waits for
    // its concurrency key they answer 409 (status waiting), and the client tries again later
    for (let waiting = deferred; waiting; ) {
      const triggers = await Promise.all(
        Array.from({ length: 3 }, () => persistently(w, () => triggerRun(runId))),
      );
      handle.triggersWon += triggers.filter((t) => t.value).length;
      for (const t of triggers) if (t.error && t.error.code !== "RunAlreadyStarted") throw t.error;
      waiting = !w.closed && triggers.every((t) => t.error?.fields?.status === "waiting");
      for (let k = 0; waiting && k < 50; k++) await quiesce();
    }
    if (races && w.random() < 0.25) {
      // let the run get going, then cancel it
      for (let k = Math.floor(w.random() * 40); k > 0; k--) await quiesce();
      const cancel = await persistently(w, () => cancelRun(runId));
      handle.cancel = cancel.value !== undefined ? "accepted" : "refused";
      if (cancel.error && cancel.error.code !== "RunAlreadyEnded") throw cancel.error;
    }
    if (redriving) await redriveWhenFailed(w, handle, runId);
    handle.settled = true;
  })().catch((error: unknown) => {
    w.violations.push(`API: run ${index} of ${name}: ${(error as Error).stack ?? error}`);
    handle.settled = true;
  });
  return handle;
}

/**
 * The history events committed for `runId`, in commit order: the entries each write appended to
 * its item's log (events.ts), with the task and item of that item. The `TaskQueued` of an
 * execution queued without its record is recorded by its first claim (`FIRST_CLAIM`), and placed
 * at the commit of its transition: the fill that queued the item (its parent's `nextIndex` moved
 * past it), or the write of the run that queued a plain task on it (its start, or a dispatch:
 * `queued` took its sort id).
 */
function eventsOf(w: World, runId: string): Item[] {
  const placed: { position: number; event: Item }[] = [];
  /** `task#index` -> the position of the fill that queued it. */
  const filled = new Map<string, number>();
  /** The sort id of a plain task's `TaskQueued` -> the position of the write that queued it on its run. */
  const queuedOnRun = new Map<string, number>();
  w.commits.forEach(({ writes }, position) => {
    for (const x of writes.filter((y) => y.key.pk === keys.runPartition(runId))) {
      if (x.after.fanOut)
        for (let i = Number(x.before?.nextIndex ?? 0); i < Number(x.after.nextIndex ?? 0); i++)
          filled.set(`${x.after.task}#${i}`, position);
      const before = (x.before?.queued ?? {}) as Record<string, string>;
      for (const [task, id] of Object.entries((x.after.queued ?? {}) as Record<string, string>))
        if (before[task] !== id) queuedOnRun.set(id, position);
      for (const { sortId, event } of eventsWritten(x)) {
        const queuedAt =
          x.condition === FIRST_CLAIM && event.type === "TaskQueued"
            ? event.item === undefined
              ? queuedOnRun.get(sortId)
              : filled.get(`${event.task}#${event.item}`)
            : undefined;
        placed.push({ position: queuedAt ?? position, event });
      }
    }
  });
  // (a stable sort: events of one position keep their commit order)
  return placed.sort((a, b) => a.position - b.position).map((p) => p.event);
}

/** How many writes of the run set each task's entry of `queued` (dispatch.ts). */
function queuedOnRunCounts(w: World, runId: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { writes } of w.commits)
    for (const x of writes.filter((y) => y.key.pk === keys.runPartition(runId) && y.key.sk === "RUN")) {
      const before = (x.before?.queued ?? {}) as Record<string, string>;
      for (const [task, id] of Object.entries((x.after.queued ?? {}) as Record<string, string>))
        if (before[task] !== id) counts.set(task, (counts.get(task) ?? 0) + 1);
    }
  return counts;
}

/** The history events one write recorded: the entries it appended to its item's log, with their sort ids. */
function eventsWritten(write: Write): { sortId: string; event: Item }[] {
  const before = (write.before?.[LOG_ATTRIBUTE] as unknown[] | undefined)?.length ?? 0;
  const appended = (write.after[LOG_ATTRIBUTE] as unknown[] | undefined)?.slice(before);
  const item = { ...write.after, [LOG_ATTRIBUTE]: appended } as Parameters<typeof eventsOfItem>[0];
  return eventsOfItem(item).map(({ sortId, event }) => ({ sortId, event: event as unknown as Item }));
}

/** What a run of `shape` must end with when nothing stopped it: every leaf's output. */
function expectedOutput(shape: Shape): unknown {
  const leaves = Object.entries(shape.definition.tasks).filter(([, spec]) => !spec.next?.length);
  return Object.fromEntries(
    leaves.map(([task]) => {
      const fanOut = shape.fanOuts[task];
      return [
        task,
        fanOut ? Array.from({ length: fanOut.size }, (_, item) => ({ task, item })) : { task, item: null },
      ];
    }),
  );
}

/** Checks I1–I6 and I8 on the finished schedule (I4 is also checked at every commit). */
function check(w: World, runs: RunHandle[]): void {
  const v = (text: string) => w.violations.push(text);
  const all = w.table.items(TABLE);
  for (const handle of runs) {
    const { shape } = handle;
    const runId = handle.runId as string;
    const name = `${shape.definition.name} (${handle.key})`;
    // I1: one run per Idempotency-Key, every racing create answered with it, started once
    const runItems = all.filter((x) => x.sk === "RUN" && x.idempotencyKey === handle.key);
    if (handle.rejected) {
      if (runItems.length > 0) v(`I5: ${name} was refused as busy, yet created`);
      continue;
    }
    if (handle.creates.size !== 1)
      v(`I1: ${name}: racing creates answered ${[...handle.creates].join(", ")}`);
    if (runItems.length !== 1) v(`I1: ${name} has ${runItems.length} runs`);
    if (handle.triggersWon > 1) v(`I1: ${runId} was started by ${handle.triggersWon} triggers`);
    const events = eventsOf(w, runId);
    const count = (type: string) => events.filter((e) => e.type === type).length;
    // started once, unless cancelled before it started (while it waited for its concurrency key)
    const run0 = w.table.get(TABLE, keys.run(runId)) as RunRecord | undefined;
    const neverStarted = run0?.status === "cancelled" && !run0.startedAt;
    if (count("RunStarted") !== (neverStarted ? 0 : 1))
      v(`I1: ${runId} has ${count("RunStarted")} RunStarted events`);
    // ended once per incarnation: each redrive takes the run from failed back to running
    const ends = count("RunSucceeded") + count("RunFailed") + count("RunCancelled");
    if (ends !== count("Redriven") + 1)
      v(`I6: ${runId} ended ${ends} times, redriven ${count("Redriven")} times`);
    let state = "running";
    let redrives = 0;
    for (const e of events) {
      if (e.type === "RunSucceeded" || e.type === "RunFailed" || e.type === "RunCancelled") {
        if (state !== "running") v(`I6: ${runId} ended again (${e.type}) while ${state}`);
        state = e.type === "RunFailed" ? "failed" : "ended";
      }
      if (e.type === "Redriven") {
        const n = (e.detail as { redriveCount?: number } | undefined)?.redriveCount;
        if (state !== "failed") v(`I1: ${runId} redriven while ${state}`);
        if (n !== ++redrives) v(`I1: ${runId} redrive ${redrives} has redriveCount ${n}`);
        state = "running";
      }
    }
    // of racing redrives one wins: every 202 names a redrive of its own, and each one happened
    if (new Set(handle.redriven).size !== handle.redriven.length || handle.redriven.length > redrives)
      v(`I1: ${runId} redrives answered 202 with ${handle.redriven.join(",")}, ${redrives} Redriven events`);
    if ((run0?.redriveCount ?? 0) !== redrives)
      v(`I1: ${runId} has redriveCount ${run0?.redriveCount}, ${redrives} Redriven events`);

    // I6: the run ended as it would have without faults
    const run = w.table.get(TABLE, keys.run(runId)) as RunRecord | undefined;
    const executions = all.filter(
      (x) =>
        x.pk === keys.runPartition(runId) &&
        (String(x.sk).startsWith("TASK#") || String(x.sk).startsWith("ITEM#")),
    ) as unknown as TaskRecord[];
    // a run may fail only when crashes used up an execution's attempts, or it ran past its deadline
    // (or a flaky execution failed for good, and the redrive actor gave up)
    const excused =
      executions.some((x) => x.error?.code === "LeaseExpired" || x.error?.code === "Flaky") ||
      run?.error?.code === "RunTimedOut";
    if (handle.cancel === "accepted" || (handle.cancel === "refused" && run?.status === "cancelled")) {
      if (run?.status !== "cancelled") v(`I6: ${runId} was cancelled (202) but ended ${run?.status}`);
    } else if (run?.status !== "succeeded" && !excused) {
      v(`I6: ${runId} ended ${run?.status}, expected succeeded: ${JSON.stringify(run?.error)}`);
    } else if (
      run?.status === "succeeded" &&
      canonicalJson(run.output) !== canonicalJson(expectedOutput(shape))
    ) {
      v(
        `I6: ${runId} output ${JSON.stringify(run.output)}, expected ${JSON.stringify(expectedOutput(shape))}`,
      );
    }
    for (const x of executions.filter((e) => e.status === "queued" || e.status === "running"))
      v(
        `I6: ${runId} ended ${run?.status} with ${x.task}/${x.item ?? "-"} still ${x.status}: ${JSON.stringify(x)}`,
      );

    // I3: each execution dispatched once and settled once per incarnation of the run (the events
    // between two `Redriven`), each attempt started once; across redrives (I2, I8):
    // - an execution settles again only once put back after its last settle: a plain or with-items
    //   task named in the `tasks` of a `Redriven` since, an item queued again (`TaskQueued`) since;
    // - nothing that succeeded is queued, started or settled again;
    // - each execution's attempt numbers strictly increase, redrives included.
    const seen = new Map<string, number>();
    let incarnation = 0;
    const settled = new Map<string, "succeeded" | "other">();
    const lastAttempt = new Map<string, number>();
    for (const e of events) {
      if (e.type === "Redriven") {
        incarnation++;
        for (const task of (e.detail as { tasks?: string[] } | undefined)?.tasks ?? [])
          if (settled.get(`${task}/-`) === "other") settled.delete(`${task}/-`);
        continue;
      }
      const id = `${e.task}/${e.item ?? "-"}`;
      const settles = ["TaskSucceeded", "TaskFailed", "TaskCancelled"].includes(String(e.type));
      const kind = settles
        ? "settled"
        : e.type === "TaskStarted"
          ? `started#${e.attempt}`
          : e.type === "TaskQueued"
            ? "queued"
            : undefined;
      if (!kind) continue;
      const once = kind.startsWith("started")
        ? `${id} ${kind}`
        : `${id} ${kind} (incarnation ${incarnation})`;
      seen.set(once, (seen.get(once) ?? 0) + 1);
      if (settled.get(id) === "succeeded")
        v(`I2: ${runId} ${id} succeeded, then ${e.type}${e.attempt ? ` attempt ${e.attempt}` : ""}`);
      if (settles && settled.has(id) && settled.get(id) !== "succeeded")
        v(`I3: ${runId} ${id} settled again (${e.type}) without being put back`);
      if (settles) settled.set(id, e.type === "TaskSucceeded" ? "succeeded" : "other");
      if (e.type === "TaskQueued" && e.item !== undefined && settled.get(id) === "other") settled.delete(id);
      if (e.type === "TaskStarted" && e.attempt !== undefined) {
        const attempt = Number(e.attempt);
        if (attempt <= (lastAttempt.get(id) ?? 0))
          v(`I8: ${runId} ${id} started attempt ${attempt} after attempt ${lastAttempt.get(id)}`);
        lastAttempt.set(id, attempt);
      }
    }
    for (const [id, n] of seen) if (n > 1) v(`I3: ${runId} ${id} ${n} times`);
    // and each plain task queued on its run at most once (dispatch.ts: an entry is never replaced,
    // and a task is put back by a redrive through its record)
    for (const [task, n] of queuedOnRunCounts(w, runId))
      if (n > 1) v(`I3: ${runId} ${task} queued on its run ${n} times`);
    // nothing is dispatched once the run is cancelled; an attempt claimed after it (the claim reads
    // the run after its write) is cancelled at once, its action never invoked
    const cancelledAt = events.findIndex((e) => e.type === "RunCancelled");
    const afterCancel = cancelledAt >= 0 ? events.slice(cancelledAt) : [];
    if (afterCancel.some((e) => e.type === "TaskQueued")) v(`I3: ${runId} dispatched after it was cancelled`);
    for (const e of afterCancel.filter((x) => x.type === "TaskStarted")) {
      const same = (x: Item) => x.task === e.task && x.item === e.item && x.attempt === e.attempt;
      const key = `${runId}/${e.task}/${e.item ?? "-"}`;
      // cancelled by its worker, or, when that worker died first, retried (its lease expired) by an
      // attempt that is judged the same way
      if (!afterCancel.some((x) => (x.type === "TaskCancelled" || x.type === "TaskRetrying") && same(x)))
        v(`I3: ${key} attempt ${e.attempt} started after its run was cancelled, and not cancelled at once`);
      if (w.invocations.some((c) => c.key === key && c.attempt === e.attempt))
        v(`I3: ${key} attempt ${e.attempt} claimed after its run was cancelled, and its action ran`);
    }

    // I4: counters back to zero, every settled item counted once
    for (const parent of parentsOf(executions as unknown as Item[])) {
      if (parent.active !== 0) v(`I4: ${runId}/${parent.task} ended with active=${parent.active}`);
      const counted = parent.succeededItems + parent.failedItems + (parent.cancelledItems ?? 0);
      const endedEarly = run?.status === "cancelled" || run?.error?.code === "RunTimedOut";
      const items = executions.filter((x) => x.task === parent.task && x.item !== undefined);
      // a task whose items failed (more than tolerated) ends with the rest never queued, and
      // with the items a redrive put back (`redo`) not queued again if it failed again
      const redo = new Set(parent.redo ?? []);
      const left = parent.total - parent.nextIndex + redo.size;
      const failedEarly = parent.status === "failed" && parent.error?.code === "ItemsFailed";
      if (!endedEarly && counted !== parent.total && !(failedEarly && counted + left === parent.total))
        v(`I4: ${runId}/${parent.task} counted ${counted} of ${parent.total}, ${left} left`);
      const isItemCounted = (x: TaskRecord) => isCounted(parent, x.item as number);
      if (items.some((x) => ["succeeded", "failed", "cancelled"].includes(x.status) !== isItemCounted(x)))
        v(`I4: ${runId}/${parent.task} has an item settled but not counted, or counted but not settled`);
      // each counter is its items as they ended (a redrive takes its items' counts back): an item
      // counted twice, or counted as an outcome it did not end with, shows here
      const as = (status: string) =>
        items.filter((x) => isItemCounted(x) && x.status === status && !redo.has(x.item as number)).length;
      const counters = [parent.succeededItems, parent.failedItems, parent.cancelledItems ?? 0];
      const statuses = [as("succeeded"), as("failed"), as("cancelled")];
      if (counters.join() !== statuses.join())
        v(
          `I4: ${runId}/${parent.task} counts succeeded/failed/cancelled ${counters.join("/")}, its items ended ${statuses.join("/")}`,
        );
      if (parent.status === "succeeded" && (parent.redo?.length ?? 0) > 0)
        v(`I4: ${runId}/${parent.task} succeeded with items left to redo: ${parent.redo?.join(",")}`);
    }

    // I2, I8: an attempt runs once; an execution succeeds again only after its worker died or froze
    const byKey = new Map<string, Invocation[]>();
    for (const call of w.invocations.filter((c) => c.key.startsWith(`${runId}/`)))
      byKey.set(call.key, [...(byKey.get(call.key) ?? []), call]);
    for (const [key, calls] of byKey) {
      const attempts = calls.map((c) => c.attempt);
      if (new Set(attempts).size !== attempts.length)
        v(`I2: ${key} ran an attempt twice (${attempts.join(",")})`);
      const successes = calls.filter((c) => c.succeeded);
      for (const early of successes.slice(0, -1))
        if (!early.actor?.dead && !early.actor?.stalledUntil)
          v(`I2: ${key} succeeded again after attempt ${early.attempt}, whose worker neither died nor froze`);
    }
    // I8: the recorded result is the last attempt's
    for (const x of executions.filter((e) => !isFanOut(e) && e.status === "succeeded")) {
      const key = `${runId}/${x.task}/${x.item ?? "-"}`;
      const last = (byKey.get(key) ?? []).filter((c) => c.attempt === x.attempt);
      if (last.length !== 1) v(`I8: ${key} recorded attempt ${x.attempt}, which ran ${last.length} times`);
    }
  }
}

/**
 * I7: after the schedule, every message ever sent is delivered once more, and the sweeper runs
 * once more; none of it may write to the table (or run an action).
 */
async function replayEverything(w: World): Promise<void> {
  const writes = w.table.writeRequests;
  const invocations = w.invocations.length;
  const replayed = new Set<string>();
  for (let round = 0; round < 3; round++) {
    const messages = w.queues.sent.filter((m) => !replayed.has(`${m.queueUrl}/${m.body}`));
    if (messages.length === 0) break;
    for (const m of messages) {
      replayed.add(`${m.queueUrl}/${m.body}`);
      const before = w.table.writeRequests;
      try {
        if (m.queueUrl === TASKS_QUEUE) await work(JSON.parse(m.body) as TaskMessage, "replay");
        else {
          const message = JSON.parse(m.body) as AdvanceMessage;
          await advanceOn(message.runId, [message]);
        }
      } catch (error) {
        w.violations.push(`I7: the duplicate ${m.body} failed: ${(error as Error).message}`);
      }
      if (w.table.writeRequests !== before)
        w.violations.push(`I7: the duplicate ${m.body} wrote to the table`);
    }
  }
  await sweep(new Date(w.clock.now() + 24 * 3600 * 1000));
  if (w.table.writeRequests !== writes)
    w.violations.push(`I7: replays made ${w.table.writeRequests - writes} writes`);
  if (w.invocations.length !== invocations) w.violations.push("I7: a replayed message ran an action again");
}

/**
 * I5: runs that share a concurrency key never run at the same time. From the commit log, each
 * run holds its key from the commit that made it `pending` or `running` (its creation, or the
 * hand-over of the lock) to the commit of its `LockReleased`; those spans never overlap for one
 * key, every action of the run ran inside its span, waiting runs got the key in creation order,
 * and every lock is free at the end.
 */
function checkConcurrencyKeys(w: World, runs: RunHandle[]): void {
  const v = (text: string) => w.violations.push(text);
  // a redriven run holds its key again from its `Redriven` commit (unless it still held it then):
  // a run has one span per time it held the key
  type Span = { runId: string; created: number; from: number; to: number; first: boolean };
  const spans = new Map<string, Span[]>();
  for (const handle of runs.filter((r) => r.concurrencyKey !== undefined && r.runId)) {
    const runId = handle.runId as string;
    const own: Span[] = [];
    let created = -1;
    let open: Span | undefined;
    for (const [n, { writes }] of w.commits.entries()) {
      for (const write of writes.filter((x) => x.key.pk === keys.runPartition(runId))) {
        const { key, after } = write;
        if (key.sk === "RUN" && created < 0) created = n;
        if (key.sk === "RUN" && !open && (after.status === "pending" || after.status === "running")) {
          open = { runId, created, from: n, to: Number.POSITIVE_INFINITY, first: own.length === 0 };
          own.push(open);
        }
        if (open && eventsWritten(write).some((e) => e.event.type === "LockReleased")) {
          open.to = n;
          open = undefined;
        }
      }
    }
    for (const call of w.invocations.filter((c) => c.key.startsWith(`${runId}/`)))
      if (!own.some((span) => span.from < call.commit && call.commit <= span.to))
        v(`I5: ${runId} ran ${call.key} while it did not hold its concurrency key`);
    const key = `${handle.shape.definition.name}#${handle.concurrencyKey}`;
    spans.set(key, [...(spans.get(key) ?? []), ...own]); // none: cancelled while it waited
  }
  for (const [key, held] of spans) {
    const byStart = [...held].sort((a, b) => a.from - b.from);
    for (let i = 1; i < byStart.length; i++) {
      const [a, b] = [byStart[i - 1], byStart[i]] as [Span, Span];
      if (b.from < a.to)
        v(`I5: ${b.runId} took key ${key} at commit ${b.from}, before ${a.runId} let go at ${a.to}`);
    }
    // waiting runs get the key in creation order (a redrive takes it again whenever it is free)
    const firsts = byStart.filter((s) => s.first);
    for (let i = 1; i < firsts.length; i++) {
      const [a, b] = [firsts[i - 1], firsts[i]] as [Span, Span];
      if (b.created < a.created)
        v(`I5: ${b.runId} got key ${key} after ${a.runId}, which was created after it`);
    }
  }
  for (const lock of w.table.items(TABLE, (i) => String(i.pk).startsWith("LOCK#")))
    if (lock.holder !== undefined || (lock.waiting as string[]).length > 0)
      v(
        `I5: lock ${lock.pk} is still held or waited for at the end: ${JSON.stringify(lock)}; holder ${JSON.stringify(w.table.get(TABLE, keys.run(String(lock.holder))))}`,
      );
}
