/**
 * The invariant checker: runs random workflows concurrently on a local stack with faults injected,
 * against a sink that records every `core.http` call, then checks I1–I8 from the sink's record and
 * the store.
 */

import { GetQueueAttributesCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import type { ChaosReport } from "../../infra/local/chaos";
import { seededRandom } from "../../infra/local/seeded-random";
import type { LocalStack } from "../../infra/local/stack";
import { isOnceflowError, isTerminal, type OnceflowClient, type RunView } from "../../lib/client";
import { sqs } from "../../lib/clients";
import { config } from "../../lib/config";
import { canonicalJson } from "../../lib/definition/hash";
import { isCounted } from "../../lib/engine/counted";
import { readLimit } from "../../lib/engine/slot";
import { type FanOutRecord, isFanOut, type TaskRecord } from "../../lib/engine/task-record";
import { type CompletionMessage, completionDedupId, sendTasks } from "../../lib/queue";
import { listEvents } from "../../lib/store/events";
import { keys } from "../../lib/store/keys";
import { queryRunItems, readTasks } from "../../lib/store/run-state";
import { peakOverlap, type Sink, type SinkRequest } from "../helpers/sink";
import { persistentClient } from "../helpers/stack";
import { callbacksCompleteOnce } from "./callbacks";
import { type Stall, stallsOf } from "./stalls";
import { fanOutAndSuccessor, randomShape, type Shape, sinkCall, transientFailures } from "./workflows";

export interface CheckResult {
  runs: number;
  /** Runs of workflows with a concurrency limit on the sink's action. */
  limitedRuns: number;
  calls: number;
  faults: { duplicates: number; redeliveries: number; crashes: number };
  violations: string[];
  /** Each run's time from its creation to its end (ms), for the runs that ended. */
  durationsMs: number[];
  /** What each crash that hit an execution cost (stalls.ts). */
  stalls: Stall[];
  /**
   * Executions whose action succeeded at the sink more than once with no crash, because an
   * earlier attempt was cut off after its call (timed out, its lease lost or expired): at-least-once, as
   * guarantees.md says, and not a violation. `{key} attempt {n}: {code}`.
   */
  cutOff: string[];
}

export async function runChecker(options: {
  stack: LocalStack;
  sink: Sink;
  runs: number;
  seed: number;
  timeoutMs?: number;
  /** `random` (default): random workflows, some under a concurrency limit; `fanout`: each run a 6-item fan-out and a successor. */
  workload?: "random" | "fanout";
  /** Also run the workflows that share concurrency keys and wait on callbacks (default true). */
  subChecks?: boolean;
  /** Log the history of the slowest run, with the crashes that hit it, to see where its time went. */
  explain?: boolean;
  log?: (line: string) => void;
}): Promise<CheckResult> {
  const { stack, sink, seed } = options;
  const client = persistentClient(stack.apiUrl);
  const log = options.log ?? (() => {});
  const random = seededRandom(seed);
  const violations: string[] = [];
  const cutOff: string[] = [];
  sink.decide((request) => {
    if (request.path === "/doomed") return 400;
    const key = request.headers["idempotency-key"] ?? "";
    const attempt = Number(request.headers["x-onceflow-attempt"] ?? 1);
    return attempt <= transientFailures(key) ? 503 : 200;
  });

  // register the workflows, then create every run at once, each with its own Idempotency-Key; some
  // workflows have a concurrency limit on the sink's action, and some of those get a second run
  // (the same workflow again), so that runs race for its slots
  const shapes: Shape[] = [];
  for (let i = 0; i < options.runs; i++) {
    const limited = shapes.filter((s) => s.definition.limits);
    const name = `chaos-${seed}-${i}`;
    if (options.workload === "fanout") {
      shapes.push(await registered(client, fanOutAndSuccessor(name, sinkCall(sink.url))));
      continue;
    }
    if (limited.length > 0 && random() < 0.15) {
      shapes.push(limited[Math.floor(random() * limited.length)] as Shape);
      continue;
    }
    const shape = randomShape(random, name, sinkCall(sink.url));
    if (random() < 0.3) withLimit(shape, 1 + Math.floor(random() * 3));
    shapes.push(await registered(client, shape));
  }
  log(`registered ${shapes.length} workflows (${options.workload ?? "random"}); starting the runs`);
  const runIds = await Promise.all(
    shapes.map(async (shape, i) => {
      const create = () =>
        client.createRun(shape.definition.name, { input: { i }, idempotencyKey: `chaos-${seed}-${i}` });
      const created = await create();
      // the same create again must give the same run (I1)
      const again = await create().catch(() => undefined);
      if (again?.runId !== created.runId)
        violations.push(`I1: run ${i} created twice under one Idempotency-Key`);
      return created.runId;
    }),
  );

  // wait for every run to end
  const deadline = Date.now() + (options.timeoutMs ?? 300_000);
  const finals = new Map<string, RunView>();
  while (finals.size < runIds.length && Date.now() < deadline) {
    for (const runId of runIds) {
      if (finals.has(runId)) continue;
      const run = await client.getRun(runId);
      if (isTerminal(run.status)) finals.set(runId, run);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  log(`${finals.size} of ${runIds.length} runs ended; checking`);
  if (options.explain) await explainSlowest([...finals.values()], stack.chaos?.crashes ?? [], log);

  const report: ChaosReport = stack.chaos ?? { duplicates: 0, redeliveries: 0, crashes: [] };
  const crashedKeys = new Set(report.crashes.flatMap((c) => c.keys));
  const calls = new Map<string, SinkRequest[]>();
  for (const request of sink.requests) {
    const key = request.headers["idempotency-key"] ?? "?";
    calls.set(key, [...(calls.get(key) ?? []), request]);
  }

  for (const [i, runId] of runIds.entries()) {
    const shape = shapes[i] as Shape;
    const run = finals.get(runId);
    if (!run) {
      const last = await client.getRun(runId).catch(() => undefined);
      const items = (await readTasks(runId)).map((t) => JSON.stringify(t)).join("\n    ");
      violations.push(
        `I6: run ${runId} (${shape.definition.name}) did not finish: ${JSON.stringify(last?.tasks)}\n    ${items}`,
      );
      continue;
    }
    if (run.status !== "succeeded")
      violations.push(`I6: run ${runId} ended ${run.status}, expected succeeded`);
    if (shape.doomed && run.tasks.doomed?.status !== "failed")
      violations.push(`run ${runId}: doomed is ${run.tasks.doomed?.status}`);

    // every execution ran, each attempt number at most once, a second success only after a crash
    const keys = shape.tasks.flatMap((task) => {
      const fanOut = shape.fanOuts[task];
      return fanOut
        ? Array.from({ length: fanOut.size }, (_, n) => `${runId}/${task}/${n}`)
        : [`${runId}/${task}/-`];
    });
    const events = await listEvents(runId);
    for (const key of keys) {
      const made = calls.get(key) ?? [];
      const attempts = made.map((r) => r.headers["x-onceflow-attempt"]);
      if (new Set(attempts).size !== attempts.length)
        violations.push(`I2: ${key} ran one attempt twice (${attempts.join(",")})`);
      const successes = made.filter(
        (r) => r.path === "/call" && transientFailures(key) < Number(r.headers["x-onceflow-attempt"]),
      );
      if (successes.length === 0) violations.push(`I6: ${key} never succeeded`);
      if (successes.length > 1 && !crashedKeys.has(key)) {
        // each success but the last: its attempt must have been cut off after its call
        const ends = successes.slice(0, -1).map((r) => {
          const attempt = Number(r.headers["x-onceflow-attempt"]);
          return { attempt, end: attemptEnd(events, key, attempt) };
        });
        if (ends.every(({ end }) => CUT_OFF.has(end)))
          cutOff.push(...ends.map(({ attempt, end }) => `${key} attempt ${attempt}: ${end}`));
        else
          violations.push(
            `I2: ${key} succeeded ${successes.length} times without a crash (${ends.map(({ attempt, end }) => `attempt ${attempt} ended ${end}`).join(", ")})`,
          );
      }
    }

    // each execution dispatched once, each attempt started once (I3), and settled once: a zombie
    // attempt never records a second result (I8); history checked from the store
    const seen = new Map<string, number>();
    const once: Record<string, (e: (typeof events)[number]) => string> = {
      TaskQueued: (e) => `TaskQueued/${e.task}/${e.item ?? "-"}`,
      TaskStarted: (e) => `TaskStarted/${e.task}/${e.item ?? "-"}/${e.attempt}`,
      TaskSucceeded: (e) => `settled/${e.task}/${e.item ?? "-"}`,
      TaskFailed: (e) => `settled/${e.task}/${e.item ?? "-"}`,
      TaskCancelled: (e) => `settled/${e.task}/${e.item ?? "-"}`,
      RunSucceeded: () => "ended",
      RunFailed: () => "ended",
    };
    for (const e of events) {
      const id = once[e.type]?.(e);
      if (id) seen.set(id, (seen.get(id) ?? 0) + 1);
    }
    for (const [id, count] of seen)
      if (count > 1)
        violations.push(`${id.startsWith("settled") ? "I8" : "I3"}: ${runId} ${id} happened ${count} times`);

    // with-items: never over the concurrency, counters back to zero (I4)
    const records = await readTasks(runId);
    for (const parent of records.filter(isFanOut) as FanOutRecord[]) {
      const cap = shape.fanOuts[parent.task]?.concurrency ?? Number.POSITIVE_INFINITY;
      if (parent.active !== 0)
        violations.push(`I4: ${runId}/${parent.task} ended with active=${parent.active}`);
      if (parent.succeededItems + parent.failedItems + (parent.cancelledItems ?? 0) !== parent.total) {
        violations.push(
          `I4: ${runId}/${parent.task} counted ${parent.succeededItems}+${parent.failedItems} of ${parent.total}`,
        );
      }
      const items = await queryRunItems(runId, `ITEM#${parent.task}#`);
      if (items.some((item) => !isCounted(parent, item.item as number)))
        violations.push(`I4: ${runId}/${parent.task} has items never counted`);
      const peak = peakOverlap(
        [...calls.entries()]
          .filter(([key]) => key.startsWith(`${runId}/${parent.task}/`))
          .flatMap(([, made]) => made),
      );
      if (peak > cap)
        violations.push(`I4: ${runId}/${parent.task} had ${peak} items running at once, over ${cap}`);
    }
  }
  log("concurrency limits (I4)");
  violations.push(...(await limitsHeld(shapes, runIds, calls)));
  if (options.subChecks !== false) {
    log("runs sharing concurrency keys (I5)");
    violations.push(...(await sharedKeysNeverOverlap(client, sink, seed)));
    log("callback tasks completed once");
    violations.push(...(await callbacksCompleteOnce(client, sink, seed)));
  }
  log("re-sending every message of the ended runs (I7)");
  const resent = Date.now();
  const limitsBefore = await limitItems(shapes);
  violations.push(...(await duplicatesChangeNothing([...finals.keys()], report)));
  if ((await limitItems(shapes)) !== limitsBefore)
    violations.push("I7: a duplicate message changed a limit item");
  log(`the re-sent messages were handled in ${((Date.now() - resent) / 1000).toFixed(1)} s`);
  const events = new Map<string, Promise<Awaited<ReturnType<typeof listEvents>>>>();
  const eventsOf = (runId: string) => {
    if (!events.has(runId)) events.set(runId, listEvents(runId));
    return events.get(runId) as ReturnType<typeof listEvents>;
  };
  return {
    runs: runIds.length,
    durationsMs: [...finals.values()].map((run) => Date.parse(run.endedAt ?? "") - Date.parse(run.createdAt)),
    stalls: await stallsOf(report.crashes, eventsOf),
    cutOff,
    limitedRuns: shapes.filter((s) => s.definition.limits).length,
    calls: sink.requests.length,
    faults: {
      duplicates: report.duplicates,
      redeliveries: report.redeliveries,
      crashes: report.crashes.length,
    },
    violations,
  };
}

/** Registers the shape's workflow. */
async function registered(client: OnceflowClient, shape: Shape): Promise<Shape> {
  await client.putWorkflow(shape.definition.name, shape.definition);
  return shape;
}

/** The action every task of a random shape calls: the sink's. */
const SINK_ACTION = "core.http";

function withLimit(shape: Shape, maxRunning: number): void {
  shape.definition.limits = { actions: { [SINK_ACTION]: { maxRunning } } };
}

/**
 * I4 for concurrency limits, from the sink's record: the calls of each limited workflow's runs
 * (every task calls the sink, and each call names its run in its Idempotency-Key) never overlap
 * more than maxRunning at any instant (an answer and an arrival at the same millisecond: the
 * answer first); and each limit item ends with `active` 0, nobody waiting and no per-run count.
 */
async function limitsHeld(
  shapes: Shape[],
  runIds: string[],
  calls: Map<string, SinkRequest[]>,
): Promise<string[]> {
  const violations: string[] = [];
  const workflows = new Map<string, { max: number; runs: Set<string> }>();
  for (const [i, shape] of shapes.entries()) {
    const max = shape.definition.limits?.actions?.[SINK_ACTION]?.maxRunning;
    if (max === undefined) continue;
    const entry = workflows.get(shape.definition.name) ?? { max, runs: new Set<string>() };
    entry.runs.add(runIds[i] as string);
    workflows.set(shape.definition.name, entry);
  }
  for (const [workflow, { max, runs }] of workflows) {
    const requests = [...calls.entries()]
      .filter(([key]) => runs.has(key.split("/")[0] as string))
      .flatMap(([, made]) => made);
    const peak = peakOverlap(requests);
    if (peak > max)
      violations.push(
        `I4: ${workflow} (${runs.size} runs) had ${peak} sink calls at once, maxRunning ${max}`,
      );
    const limit = await readLimit({ workflow, action: SINK_ACTION });
    const counts = Object.keys(limit ?? {}).filter((k) => k.startsWith("held#") || k.startsWith("served#"));
    if (limit && (limit.active !== 0 || limit.waiting.length > 0 || counts.length > 0))
      violations.push(`I4: the limit of ${workflow} ended as ${JSON.stringify(limit)}`);
  }
  return violations;
}

/** The limit items of the limited workflows, as canonical JSON. */
async function limitItems(shapes: Shape[]): Promise<string> {
  const names = [...new Set(shapes.filter((s) => s.definition.limits).map((s) => s.definition.name))];
  return canonicalJson(
    await Promise.all(names.map((workflow) => readLimit({ workflow, action: SINK_ACTION }))),
  );
}

/** Every item of the run's partition, by sort key, as canonical JSON. */
async function snapshot(runId: string): Promise<Map<string, string>> {
  const items = [
    ...(await queryRunItems(runId, "RUN")),
    ...(await queryRunItems(runId, keys.taskPrefix)),
    ...(await queryRunItems(runId, "ITEM#")),
    ...(await queryRunItems(runId, keys.eventPrefix)),
  ];
  return new Map(items.map((item) => [String(item.sk), canonicalJson(item)]));
}

/**
 * Waits until both queues are empty (nothing visible, nothing in flight but what handlers that
 * died hold), twice in a row.
 */
async function drained(held: () => number, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let quiet = 0;
  while (Date.now() < deadline) {
    let visible = 0;
    let inFlight = 0;
    for (const url of [config.tasksQueueUrl(), config.completionsQueueUrl()]) {
      const { Attributes = {} } = await sqs().send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        }),
      );
      visible += Number(Attributes.ApproximateNumberOfMessages ?? 0);
      inFlight += Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0);
    }
    const pending = visible > 0 ? visible : Math.max(0, inFlight - held());
    quiet = pending <= 0 ? quiet + 1 : 0;
    if (quiet >= 2) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

/**
 * I7, end to end: once the runs ended, the task message of every execution and the completion of
 * every settled one are delivered again (new dedup ids, so SQS takes them), through the same
 * handlers and faults. Nothing in the runs' partitions may change.
 */
async function duplicatesChangeNothing(runIds: string[], report: ChaosReport): Promise<string[]> {
  const before = new Map(await Promise.all(runIds.map(async (id) => [id, await snapshot(id)] as const)));
  for (const runId of runIds) {
    const executions = (await readTasks(runId)).filter((t) => !isFanOut(t)) as TaskRecord[];
    const items = (await queryRunItems(runId, "ITEM#")) as unknown as TaskRecord[];
    const all = [...executions, ...items];
    await sendTasks(
      all.map((e) => ({ runId, task: e.task, item: e.item })),
      "i7-check",
    );
    for (const e of all.filter((x) => x.attempt > 0 || x.status === "cancelled")) {
      const completion: CompletionMessage = {
        runId,
        task: e.task,
        item: e.item,
        attempt: e.attempt,
        outcome: e.status as CompletionMessage["outcome"],
      };
      await sqs().send(
        new SendMessageCommand({
          QueueUrl: config.completionsQueueUrl(),
          MessageBody: JSON.stringify(completion),
          // a group of its own: on the deployed timeouts an advance that died holds its group for 6 minutes
          MessageGroupId: `${completionDedupId(completion)}-i7`,
          MessageDeduplicationId: `${completionDedupId(completion)}-i7`,
        }),
      );
    }
  }
  const violations: string[] = [];
  // a message whose handler died stays in flight until its visibility timeout (minutes, deployed)
  const held = () =>
    report.crashes
      .filter((c) => c.fn === "worker" || c.fn === "advance")
      .reduce((n, c) => n + c.keys.length, 0);
  if (!(await drained(held))) violations.push("I7: the re-sent messages were not all handled within 60 s");
  for (const runId of runIds) {
    const after = await snapshot(runId);
    const was = before.get(runId) ?? new Map();
    for (const [sk, item] of after)
      if (was.get(sk) !== item) violations.push(`I7: a duplicate message changed ${runId} ${sk}`);
  }
  return violations;
}

/**
 * I5 under the same faults: 6 runs of one workflow with a concurrency key, created at once over
 * two keys; each run calls the sink twice, and the calls of runs that share a key never overlap
 * (each run's first call comes after the previous holder's last call was answered).
 */
async function sharedKeysNeverOverlap(client: OnceflowClient, sink: Sink, seed: number): Promise<string[]> {
  const name = `chaos-${seed}-keyed`;
  const call = (step: number) => ({
    action: "core.http",
    input: { url: `${sink.url}/keyed`, body: { run: "{% input.n %}", step } },
    retry: { maxAttempts: 10, intervalSeconds: 0.2, backoffRate: 1 },
    timeoutSeconds: 5,
  });
  const definition = {
    name,
    concurrencyKey: "{% input.repo %}",
    tasks: { first: { ...call(1), next: [{ do: ["second"] }] }, second: call(2) },
  };
  await client.putWorkflow(name, definition);
  const repoOf = (n: number) => (n % 2 === 0 ? "even" : "odd");
  const created = await Promise.all(
    Array.from({ length: 6 }, (_, n) =>
      client.createRun(name, { input: { repo: repoOf(n), n }, idempotencyKey: `${name}-${n}` }),
    ),
  );
  const violations: string[] = [];
  const deadline = Date.now() + 180_000;
  for (const [n, { runId }] of created.entries()) {
    const run = await client
      .waitForRun(runId, { timeoutMs: Math.max(1, deadline - Date.now()), intervalMs: 250 })
      .catch((error: unknown) => {
        if (isOnceflowError(error, "WaitTimedOut")) return error.fields.run as RunView;
        throw error;
      });
    if (run.status !== "succeeded") violations.push(`I5: keyed run ${n} (${runId}) ended ${run.status}`);
  }
  // each run's span, from its first call's arrival to its last call's answer, per key
  const spans = new Map<number, { from: number; to: number }>();
  for (const r of sink.requests.filter((q) => q.path === "/keyed")) {
    const { run } = r.json as { run: number };
    const span = spans.get(run) ?? { from: r.at, to: r.answeredAt ?? r.at };
    spans.set(run, { from: Math.min(span.from, r.at), to: Math.max(span.to, r.answeredAt ?? r.at) });
  }
  for (const repo of ["even", "odd"]) {
    const held = [...spans.entries()]
      .filter(([n]) => repoOf(n) === repo)
      .sort((a, b) => a[1].from - b[1].from);
    for (let k = 1; k < held.length; k++) {
      const [[before, a], [after, b]] = [held[k - 1], held[k]] as [
        [number, { to: number }],
        [number, { from: number }],
      ];
      if (b.from < a.to) violations.push(`I5: keyed runs ${before} and ${after} (key ${repo}) overlapped`);
    }
  }
  return violations;
}

/** The history of the slowest run, each event and crash (its own, and the sweeper's) at its offset from the run's creation. */
async function explainSlowest(
  runs: RunView[],
  crashes: ChaosReport["crashes"],
  log: (line: string) => void,
): Promise<void> {
  const took = (run: RunView) => Date.parse(run.endedAt ?? "") - Date.parse(run.createdAt);
  const slowest = runs.sort((a, b) => took(b) - took(a))[0];
  if (!slowest) return;
  const start = Date.parse(slowest.createdAt);
  const at = (ms: number) => `${((ms - start) / 1000).toFixed(1).padStart(7)} s`;
  const lines = [
    ...(await listEvents(slowest.runId)).map((e) => ({
      ms: Date.parse(e.at),
      text: `${e.type} ${e.task ?? ""}${e.item === undefined ? "" : `/${e.item}`}${e.attempt ? ` #${e.attempt}` : ""}`,
    })),
    ...crashes
      // the sweeper's crashes too: its looks are what heal a run
      .filter((c) => c.fn === "sweeper" || c.keys.some((k) => k.startsWith(slowest.runId)))
      .map((c) => ({ ms: c.at, text: `CRASH ${c.fn} ${c.when} ${c.command} (${c.keys.join(", ")})` })),
  ].sort((a, b) => a.ms - b.ms);
  log(`the slowest run, ${slowest.runId}, took ${(took(slowest) / 1000).toFixed(1)} s:`);
  for (const line of lines) log(`${at(line.ms)}  ${line.text}`);
}

/** How an attempt can end after its call reached the sink, its action then invoked again (guarantees.md). */
const CUT_OFF = new Set(["TaskTimedOut", "LeaseLost", "LeaseExpired"]);

/**
 * How attempt `attempt` of the execution `key` (`{runId}/{task}/{item or -}`) ended, from its
 * history: the error code of its `TaskRetrying` or `TaskFailed`, else its event's type, or `no result`.
 */
function attemptEnd(events: Awaited<ReturnType<typeof listEvents>>, key: string, attempt: number): string {
  const [, task, item] = key.split("/");
  const end = events.find(
    (e) =>
      e.task === task &&
      String(e.item ?? "-") === item &&
      e.attempt === attempt &&
      ["TaskSucceeded", "TaskRetrying", "TaskFailed", "TaskCancelled"].includes(e.type),
  );
  if (!end) return "no result";
  if (end.type === "TaskRetrying" || end.type === "TaskFailed")
    return (end.detail?.error as { code?: string } | undefined)?.code ?? end.type;
  return end.type;
}
