/**
 * A worker that runs the successor its task made ready itself (lib/engine/work.ts), against
 * DynamoDB Local: the successor's message is held back, not sent, and goes through the same
 * claim as any other. Task messages are captured, not delivered, and the stack runs no sweeper,
 * so what is sent, and when, is the test's to see.
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { registerAction } from "../../lib/actions/registry";
import { advance } from "../../lib/engine/advance";
import { onPoint } from "../../lib/engine/interleave";
import type { TaskRecord } from "../../lib/engine/task-record";
import { work } from "../../lib/engine/work";
import type { TaskMessage } from "../../lib/queue";
import { keys } from "../../lib/store/keys";
import { readItem, readRun } from "../../lib/store/run-state";
import { eventsOf, register } from "../helpers/runs";
import { captureTaskMessages } from "../helpers/sends";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack({ sweeper: false });
const captured = captureTaskMessages();

/** Fails its first call (retryably), then echoes: one test uses it. */
let flakyCalls = 0;
registerAction("test.flaky-once", (input) => {
  if (flakyCalls++ === 0) throw new Error("first call fails");
  return input ?? null;
});

/** Counts its calls. */
let counted = 0;
registerAction("test.counted", (input) => {
  counted++;
  return input ?? null;
});

const stopHooks: (() => void)[] = [];
afterEach(() => {
  for (const stop of stopHooks.splice(0)) stop();
});

/** Registers `tasks`, creates a run of it, and returns the run and its start task's message. */
async function start(tasks: Record<string, unknown>): Promise<{ runId: string; a: TaskMessage }> {
  const name = `continuation-${randomUUID().slice(0, 8)}`;
  await register(stack, { name, tasks });
  const { runId } = await stack.client.createRun(name, { input: { n: 5 } });
  const [a] = captured.sent() as [TaskMessage];
  captured.clear();
  return { runId, a };
}

const chain = {
  a: { action: "core.echo", input: { n: "{% input.n %}" }, next: [{ do: ["b"] }] },
  b: { action: "core.echo", input: { n: "{% tasks.a.output.n + 1 %}" }, next: [{ do: ["c"] }] },
  c: { action: "core.echo", input: { n: "{% tasks.b.output.n + 1 %}" }, timeoutSeconds: 7 },
};

const always = () => true;
const recordOf = (runId: string, task: string) => readItem<TaskRecord>(keys.task(runId, task));
const typesOf = async (runId: string) =>
  (await eventsOf(stack, runId)).map((e) => `${e.type}${e.task ? ` ${e.task}` : ""}`);

describe("a worker running its task's successor itself", () => {
  it("runs a chain to its end in one call, sending no message, with the history as if each had been sent", async () => {
    const { runId, a } = await start(chain);
    expect(await work(a, "w", { roomFor: always })).toEqual({ done: true });
    expect(captured.sent()).toEqual([]);
    expect(await stack.client.getRun(runId)).toMatchObject({ status: "succeeded", output: { c: { n: 7 } } });
    expect(await typesOf(runId)).toEqual([
      "RunCreated",
      "RunStarted",
      ...["a", "b", "c"].flatMap((t) => [`TaskQueued ${t}`, `TaskStarted ${t}`, `TaskSucceeded ${t}`]),
      "RunSucceeded",
    ]);
  });

  it("sends the successor's message when there is no time for it, asking with the successor's timeout", async () => {
    const { runId, a } = await start(chain);
    const asked: number[] = [];
    const until = (last: string) => (timeoutSeconds: number) => {
      asked.push(timeoutSeconds);
      return asked.length === 1 || last !== "b";
    };
    expect(await work(a, "w", { roomFor: until("b") })).toEqual({ done: true });
    // b (default timeout) ran here; for c (7 s) there was no time: its message went out
    expect(asked).toEqual([60, 7]);
    expect(captured.sent()).toMatchObject([{ runId, task: "c", queued: { execution: { input: { n: 7 } } } }]);
    expect(await recordOf(runId, "b")).toMatchObject({ status: "succeeded", workerId: "w" });
    expect(await recordOf(runId, "c")).toBeUndefined();
  });

  it("runs one of two successors made ready together, and sends the other", async () => {
    const { runId, a } = await start({
      a: { action: "core.echo", next: [{ do: ["b", "c"] }] },
      b: { action: "core.echo" },
      c: { action: "core.echo" },
    });
    await work(a, "w", { roomFor: always });
    const [sent] = captured.sent() as [TaskMessage];
    expect(captured.sent()).toHaveLength(1);
    const ranHere = sent.task === "b" ? "c" : "b";
    expect(await recordOf(runId, ranHere)).toMatchObject({ status: "succeeded" });
    expect(await recordOf(runId, sent.task)).toBeUndefined();
    await work(sent, "w2");
    expect(await stack.client.getRun(runId)).toMatchObject({ status: "succeeded" });
  });

  it("a successor whose attempt fails retryably goes to the queue for its retry; its predecessor's message is done", async () => {
    const { runId, a } = await start({
      a: { action: "core.echo", next: [{ do: ["b"] }] },
      b: { action: "test.flaky-once", retry: { maxAttempts: 2 } },
    });
    expect(await work(a, "w", { roomFor: always })).toEqual({ done: true });
    expect(captured.sent()).toMatchObject([{ runId, task: "b" }]);
    expect(await recordOf(runId, "b")).toMatchObject({ status: "queued", attempt: 1 });
  });

  it("a run cancelled between the successor's dispatch and its claim: the successor is cancelled unrun", async () => {
    const { runId, a } = await start({ ...chain, b: { ...chain.b, action: "test.counted" } });
    stopHooks.push(
      onPoint("claim:before-write", async ({ task }) => {
        if (task === "b") expect((await stack.api("POST", `/runs/${runId}/cancel`)).status).toBe(202);
      }),
    );
    const before = counted;
    expect(await work(a, "w", { roomFor: always })).toEqual({ done: true });
    expect(await recordOf(runId, "b")).toMatchObject({ status: "cancelled" });
    expect(counted).toBe(before);
    expect(await recordOf(runId, "c")).toBeUndefined();
    expect(captured.sent()).toEqual([]);
  });

  it("a cancel's wind-down closes the held successor before its claim: the claim finds it cancelled, the run leaves the index", async () => {
    const { runId, a } = await start({ ...chain, b: { ...chain.b, action: "test.counted" } });
    let closed: TaskRecord | undefined;
    stopHooks.push(
      onPoint("claim:before-write", async ({ task }) => {
        if (task !== "b") return;
        expect((await stack.api("POST", `/runs/${runId}/cancel`)).status).toBe(202);
        await advance(runId, [], new Date(), { look: true }); // the run's look: its wind-down
        closed = await recordOf(runId, "b");
      }),
    );
    const before = counted;
    expect(await work(a, "w", { roomFor: always })).toEqual({ done: true });
    // closed by the wind-down (no record left unwritten for a claim to put running later)
    expect(closed).toMatchObject({ status: "cancelled", attempt: 0 });
    expect(counted).toBe(before);
    expect(await typesOf(runId)).not.toContain("TaskStarted b");
    expect((await readRun(runId))?.sweepShard).toBeUndefined();
  });

  it("a worker that dies holding the successor's message: the run's look sends it 30 s on", async () => {
    const { runId, a } = await start(chain);
    // the worker never gets past the successor's claim, and never returns
    stopHooks.push(
      onPoint("claim:before-write", ({ task }) => (task === "b" ? new Promise(() => {}) : undefined)),
    );
    void work(a, "w", { roomFor: always });
    await expect.poll(async () => (await readRun(runId))?.queued?.b).toBeDefined();
    await advance(runId, [], new Date(), { look: true });
    expect(captured.sent()).toEqual([]);
    await advance(runId, [], new Date(Date.now() + 31_000), { look: true });
    const [again] = captured.sent() as [TaskMessage];
    expect(again).toMatchObject({ runId, task: "b", queued: { execution: { input: { n: 6 } } } });
    for (const stop of stopHooks.splice(0)) stop();
    captured.clear();
    expect(await work(again, "w2", { roomFor: always })).toEqual({ done: true });
    expect(await stack.client.getRun(runId)).toMatchObject({ status: "succeeded", output: { c: { n: 7 } } });
  });

  it("an error (not a death) while running the successor sends its message before the predecessor's comes back", async () => {
    const { runId, a } = await start(chain);
    stopHooks.push(
      onPoint("claim:before-write", ({ task }) => {
        if (task === "b") throw new Error("throttled");
      }),
    );
    await expect(work(a, "w", { roomFor: always })).rejects.toThrow("throttled");
    expect(captured.sent()).toMatchObject([{ runId, task: "b" }]);
    expect(await recordOf(runId, "a")).toMatchObject({ status: "succeeded" });
  });
});
