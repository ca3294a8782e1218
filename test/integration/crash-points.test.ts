/**
 * Each kind of crash, one at a time, on the configuration users run: serverless.yml's visibility
 * timeouts (15 and 6 minutes), the sweeper's ticks and schedule, no shortcut. A probe run of a
 * 2-item fan-out and its successor records the AWS calls of each invocation on its path (the API's
 * create and trigger, the worker on an item and on the successor, the first advance); then one
 * run per (invocation, call, before|after) dies exactly there, all at once; and the sweeper dies at
 * each of its calls about a run (reading, re-sending, postponing, before and after) while it
 * recovers that run's item, whose worker died before its claim. Each run must end succeeded with
 * every execution settled once, and each crash that hit it must stall it no longer than the default
 * lease plus a few seconds (45 s): from the crash to the next transition of the execution it hit
 * (test/chaos/stalls.ts), or of the run for the API's and the sweeper's crashes, counted from the
 * last crash of the run before that transition (an advance that dies holds a batch of up to 10
 * messages, of other runs too, so some runs are hit twice; the sweeper dies while healing a worker's crash).
 */
import { describe, expect, it } from "vitest";
import type { CrashPlan } from "../../infra/local/chaos";
import { isOnceflowError } from "../../lib/client";
import { listEvents } from "../../lib/store/events";
import { stallsOf } from "../chaos/stalls";
import { register, waitForRun } from "../helpers/runs";
import { persistentClient, useLocalStack } from "../helpers/stack";

/** The bound of issue 13: the default lease (30 s) plus a few seconds. */
const BOUND_MS = 45_000;
/** How long a run is waited for: four crashes' bounds. */
const WAIT_MS = 4 * BOUND_MS;

type Kind = "create" | "trigger" | "worker on an item" | "worker on the successor" | "advance";
interface Target {
  kind: Kind;
  index: number;
  when: "before" | "after";
  /** How many invocations die there (default 1): each copy of the message a look sends, in turn. */
  times?: number;
  /** How many did so far. */
  hits?: number;
  /** When the (last) crash happened. */
  at?: number;
}

/** The sweeper dies at its first call of this command about the run (its item left overdue by a worker crash). */
interface SweeperTarget {
  command: "GetItemCommand" | "SendMessageBatchCommand" | "UpdateItemCommand";
  when: "before" | "after";
  at?: number;
}

/** Which invocation of a run (or of a workflow's create) a call belongs to. */
function kindOf(fn: string, key: string): { kind: Kind; id: string } | undefined {
  const [first, second, third] = key.split("/");
  if (fn === "api") {
    const create = /^POST \/workflows\/([^/]+)\/runs$/.exec(key);
    if (create) return { kind: "create", id: create[1] as string };
    const trigger = /^POST \/runs\/([^/]+)\/trigger$/.exec(key);
    return trigger ? { kind: "trigger", id: trigger[1] as string } : undefined;
  }
  if (fn === "worker" && second === "items" && third === "0")
    return { kind: "worker on an item", id: first as string };
  if (fn === "worker" && second === "after") return { kind: "worker on the successor", id: first as string };
  if (fn === "advance") return { kind: "advance", id: first as string };
  return undefined;
}

/** Calls per kind, seen by the probe (the most in one invocation). */
const probed = new Map<Kind, number>();
let probeId: string | undefined;
const PROBE = "cp-probe";
/** Crash targets by run id (or by workflow name, for the create). */
const targets = new Map<string, Target>();
/** Between the starts of the sweeper's target runs: more than the deployed sweep interval (5 s). */
const SWEEPER_SPACING_MS = 6_000;
/** The sweeper's crash targets, by run id. */
const sweeperTargets = new Map<string, SweeperTarget>();
/** Advance invocations begun per run: an advance target dies only in its run's first (the one the probe measured). */
const advancesBegun = new Map<string, number>();

const plan: CrashPlan = ({ fn, keys, index, command, input }) => {
  if (fn === "sweeper") {
    const about = JSON.stringify(input ?? null);
    for (const [runId, target] of sweeperTargets) {
      if (target.at !== undefined || target.command !== command || !about.includes(runId)) continue;
      target.at = Date.now();
      return target.when;
    }
    return undefined;
  }
  if (fn === "advance" && index === 1) {
    // once an invocation per run, however many of its messages the batch holds
    const runs = new Set(keys.map((key) => kindOf(fn, key)?.id));
    for (const id of runs) if (id) advancesBegun.set(id, (advancesBegun.get(id) ?? 0) + 1);
  }
  for (const key of keys) {
    const found = kindOf(fn, key);
    if (!found) continue;
    if (found.id === probeId || found.id === PROBE)
      probed.set(found.kind, Math.max(probed.get(found.kind) ?? 0, index));
    const target = targets.get(found.id);
    if (!target || target.kind !== found.kind || (target.hits ?? 0) >= (target.times ?? 1)) continue;
    // a later advance (a look) may hold other runs' looks: dying there would hit them again and again
    if (found.kind === "advance" && advancesBegun.get(found.id) !== 1) continue;
    if (index === target.index) {
      target.at = Date.now();
      target.hits = (target.hits ?? 0) + 1;
      return target.when;
    }
  }
  return undefined;
};

const stack = useLocalStack({
  chaos: { duplicate: false, redeliver: false, crash: 0, seed: 1, plan },
  // exactly as deployed: no shortened schedule, the sweep's own period
  scheduleIntervalMs: undefined,
  environment: {},
});

const definition = (name: string) => ({
  name,
  tasks: {
    items: {
      action: "core.echo",
      withItems: "{% [0, 1] %}",
      input: { item: "{% item %}" },
      next: [{ when: "succeeded", do: ["after"] }],
    },
    after: { action: "core.echo", input: { done: true } },
  },
});

/** Creates a run (not started), sets its target, then triggers it; both calls retried as a client would. */
async function start(name: string, target?: Target): Promise<string> {
  if (target?.kind === "create") targets.set(name, target);
  const client = persistentClient(stack.apiUrl);
  const { runId } = await client.createRun(name, { input: {}, start: false, idempotencyKey: name });
  if (name === PROBE) probeId = runId;
  if (target && target.kind !== "create") targets.set(runId, target);
  await client.triggerRun(runId).catch((error: unknown) => {
    // RunAlreadyStarted (409): a trigger that died after taking effect
    if (!isOnceflowError(error, "RunAlreadyStarted")) throw error;
  });
  return runId;
}

/** Every execution settled once, every attempt started once. */
async function settledOnce(runId: string): Promise<string[]> {
  const seen = new Map<string, number>();
  for (const e of await listEvents(runId)) {
    const id =
      e.type === "TaskStarted"
        ? `started ${e.task}/${e.item ?? "-"}/${e.attempt}`
        : ["TaskSucceeded", "TaskFailed", "TaskCancelled"].includes(e.type)
          ? `settled ${e.task}/${e.item ?? "-"}`
          : undefined;
    if (id) seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([id, n]) => `${runId}: ${id} ${n} times`);
}

describe("one crash at each AWS call, on the deployed timeouts", () => {
  it("every run ends, each execution once, within the lease plus a few seconds of its crash", async () => {
    await register(stack, definition(PROBE));
    await start(PROBE);
    const probe = await waitForRun(stack, probeId as string, undefined, 60_000);
    expect(probe.status).toBe("succeeded");
    await new Promise((resolve) => setTimeout(resolve, 500)); // the probe's last calls (deletes, a look) done
    const kinds: Kind[] = ["create", "trigger", "worker on an item", "worker on the successor", "advance"];
    for (const kind of kinds) expect(probed.get(kind) ?? 0, kind).toBeGreaterThan(0);

    const points: Target[] = [
      ...kinds.flatMap((kind) =>
        Array.from({ length: probed.get(kind) as number }, (_, i) =>
          (["before", "after"] as const).map((when) => ({ kind, index: i + 1, when })),
        ).flat(),
      ),
      // and an item's worker dying before its claim twice: the first look's copy dies too, and the
      // next look must send it again (its dedup id moves on with the look period, look.ts)
      { kind: "worker on an item", index: 1, when: "before", times: 2 },
    ];
    // the sweeper: each of its calls about a run, before and after, while it recovers that run's item
    const sweeperPoints: SweeperTarget[] = (
      ["GetItemCommand", "SendMessageBatchCommand", "UpdateItemCommand"] as const
    ).flatMap((command) => (["before", "after"] as const).map((when) => ({ command, when })));
    // long enough for a run hit by several crashes (an advance that dies holds other runs' messages):
    // the bound is judged per crash below, from the crashes that hit the run
    const wait = (runId: string) => waitForRun(stack, runId, undefined, WAIT_MS).catch(() => undefined);
    const handlerRuns = await Promise.all(
      points.map(async (point, i) => {
        await register(stack, definition(`cp-${i}`));
        const name = `${point.kind} ${point.when} call ${point.index}${point.times ? `, ${point.times} times` : ""}`;
        return { name, crashes: [point], runId: await start(`cp-${i}`, point) };
      }),
    );
    const handlerEnds = await Promise.all(handlerRuns.map(({ runId }) => wait(runId)));
    // then the sweeper's points, alone: a sweeper that dies stops its pass for every run in hand
    const sweeperRuns = await Promise.all(
      sweeperPoints.map(async (point, i) => {
        const name = `cp-s${i}`;
        await register(stack, definition(name));
        // started a tick and more apart, so that each run's item falls overdue in a pass of its own:
        // a pass that dies at one run's target would otherwise cut short another run's recovery
        // after its re-send and before its postpone, and that run's postpone target never came
        await new Promise((resolve) => setTimeout(resolve, i * SWEEPER_SPACING_MS));
        // its item's worker dies before its claim, so the sweeper has to send it again
        const worker: Target = { kind: "worker on an item", index: 1, when: "before" };
        const runId = await start(name, worker);
        sweeperTargets.set(runId, point);
        return { name: `sweeper ${point.when} ${point.command}`, crashes: [worker, point], runId };
      }),
    );
    const sweeperEnds = await Promise.all(sweeperRuns.map(({ runId }) => wait(runId)));
    const runs = [...handlerRuns, ...sweeperRuns];
    const ended = [...handlerEnds, ...sweeperEnds];

    const problems: string[] = [];
    const crashes = stack.stack.chaos?.crashes ?? [];
    for (const [i, { name, crashes: planned, runId }] of runs.entries()) {
      const run = ended[i];
      const hits = crashes.filter((c) =>
        c.keys.some((key) => key.includes(runId) || key === `POST /workflows/cp-${i}/runs`),
      );
      const hitsSaid = hits.map((c) => `${new Date(c.at).toISOString()} ${c.fn} ${c.when} ${c.command}`);
      if (!run) {
        const history = (await listEvents(runId)).map(
          (e) => `${e.at} ${e.type} ${e.task ?? ""}/${e.item ?? ""}`,
        );
        problems.push(
          `${name}: the run did not end in ${WAIT_MS / 1000} s: ${history.join(", ")}; crashes: ${hitsSaid.join(", ")}`,
        );
        continue;
      }
      if (run.status !== "succeeded") problems.push(`${name}: the run ended ${run.status}`);
      // (the first advance of a run makes more or fewer calls by what its batch holds)
      const first = planned[0] as Target;
      if (planned.some((p) => p.at === undefined) && !("kind" in first && first.kind === "advance"))
        problems.push(`${name}: no crash happened`);
      // each crash's stall: from it to the next transition of the execution it hit (test/chaos/stalls.ts);
      // for the API's and the sweeper's, which hit no execution, to the run's next transition
      const events = await listEvents(runId);
      const sweeperCrash = planned.find((p): p is SweeperTarget => "command" in p && p.at !== undefined);
      const judged = [
        ...hits,
        ...(sweeperCrash
          ? [
              {
                at: sweeperCrash.at as number,
                fn: "sweeper",
                keys: [],
                when: sweeperCrash.when,
                command: sweeperCrash.command,
              },
            ]
          : []),
      ];
      for (const crash of judged) {
        const ours = (await stallsOf([crash], async () => events)).filter((s) =>
          s.key.startsWith(`${runId}/`),
        );
        const next = events.find((e) => Date.parse(e.at) > crash.at);
        const waited =
          crash.fn === "worker" || crash.fn === "advance"
            ? Math.max(0, ...ours.map((s) => s.ms))
            : next
              ? Date.parse(next.at) - crash.at
              : 0;
        // a later crash of the same run before that transition (the sweeper dying while it heals
        // this one) owns the time from it on: each crash is judged from the last one before it healed
        const healedAt = crash.at + waited;
        const from = Math.max(crash.at, ...judged.map((c) => c.at).filter((at) => at < healedAt));
        const stall = healedAt - from;
        if (stall > BOUND_MS)
          problems.push(
            `${name}: the ${crash.fn} crash (${crash.when} ${crash.command}) stalled it ${(stall / 1000).toFixed(1)} s; crashes: ${hitsSaid.join(", ")}`,
          );
      }
      problems.push(...(await settledOnce(runId)));
    }
    expect(problems).toEqual([]);
    expect(points.length).toBeGreaterThanOrEqual(20);
    // every point of the API and the worker fires; an advance's points fire only up to the calls of
    // its run's first advance, which vary with what its batch holds (the probe saw the most)
    const missed = points.filter((p) => p.at === undefined);
    expect(missed.filter((p) => p.kind !== "advance")).toEqual([]);
    expect(points.filter((p) => p.kind === "advance" && p.at !== undefined).length).toBeGreaterThanOrEqual(2);
    expect(sweeperPoints.every((p) => p.at !== undefined)).toBe(true);
    expect(points.filter((p) => p.times).map((p) => p.hits)).toEqual([2]);
  }, 480_000);
});
