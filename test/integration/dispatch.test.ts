/**
 * The dispatch of successors (lib/engine/dispatch.ts) against DynamoDB Local: a successor is
 * queued on its run, one conditional update of the run, and its message carries its record, which
 * its first claim puts. Task messages are captured, not delivered, and the stack runs no
 * sweeper, so the test decides which copy goes where, and when.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { advance } from "../../lib/engine/advance";
import { claim } from "../../lib/engine/claim";
import { barrier } from "../../lib/engine/interleave";
import type { TaskRecord } from "../../lib/engine/task-record";
import { work } from "../../lib/engine/work";
import type { TaskMessage } from "../../lib/queue";
import { keys } from "../../lib/store/keys";
import { readItem, readRun } from "../../lib/store/run-state";
import { eventsOf, register } from "../helpers/runs";
import { captureTaskMessages } from "../helpers/sends";
import { useLocalStack } from "../helpers/stack";
import { unqueueOnRun } from "../helpers/table";

const stack = useLocalStack({ sweeper: false });
const captured = captureTaskMessages();

/** A run of `a` then `b` (given a's output), `a` done and `b` dispatched by a's worker. */
async function runWithSuccessor(): Promise<{ runId: string; b: TaskMessage }> {
  const name = `dispatch-${randomUUID().slice(0, 8)}`;
  await register(stack, {
    name,
    tasks: {
      a: { action: "core.echo", input: { n: "{% input.n %}" }, next: [{ do: ["b"] }] },
      b: { action: "core.echo", input: { fromA: "{% tasks.a.output.n %}" } },
    },
  });
  const { runId } = await stack.client.createRun(name, { input: { n: 5 } });
  const [a] = captured.sent() as [TaskMessage];
  captured.clear();
  expect(await work(a, "w-a")).toEqual({ done: true });
  const [b] = captured.sent() as [TaskMessage];
  captured.clear();
  return { runId, b };
}

const recordOf = (runId: string, task: string) => readItem<TaskRecord>(keys.task(runId, task));

describe("a successor's dispatch", () => {
  it("queues it on its run without its record: one message with its input, shown queued, put by its first claim", async () => {
    const { runId, b } = await runWithSuccessor();
    expect(b).toMatchObject({ runId, task: "b", queued: { execution: { input: { fromA: 5 } } } });
    expect(await recordOf(runId, "b")).toBeUndefined();
    expect((await readRun(runId))?.queued?.b).toBe(b.queued?.queuedAs);
    expect((await stack.client.getRun(runId)).tasks.b).toMatchObject({ status: "queued", attempts: 0 });
    expect(await stack.api("GET", `/runs/${runId}/tasks/b`)).toMatchObject({
      status: 200,
      body: { status: "queued", input: { fromA: 5 } },
    });

    expect(await work(b, "w-b")).toEqual({ done: true });
    const run = await stack.client.getRun(runId);
    expect(run).toMatchObject({ status: "succeeded", output: { b: { fromA: 5 } } });
    const events = (await eventsOf(stack, runId)).map((e) => `${e.type}${e.task ? ` ${e.task}` : ""}`);
    expect(events).toEqual([
      "RunCreated",
      "RunStarted",
      "TaskQueued a",
      "TaskStarted a",
      "TaskSucceeded a",
      "TaskQueued b",
      "TaskStarted b",
      "TaskSucceeded b",
      "RunSucceeded",
    ]);
  });

  it("of advances racing over the same completion (all past their read of the run), one queues it: one message", async () => {
    for (let round = 0; round < 5; round++) {
      const { runId } = await runWithSuccessor();
      // the run as a's worker left it, b queued: take b's entry back, as if no advance had run yet
      await unqueueOnRun(runId, "b");
      const allRead = barrier("advance:before-dispatch", 4);
      await Promise.all([...Array.from({ length: 4 }, () => advance(runId)), allRead]);
      expect(captured.sent().filter((m) => m.task === "b")).toHaveLength(1);
      captured.clear();
    }
  });

  it("a successor whose message was lost is sent again by the run's look 30 s on; of the copies one claims it", async () => {
    const { runId, b: lost } = await runWithSuccessor();
    await advance(runId, [], new Date(), { look: true });
    expect(captured.sent()).toEqual([]);
    await advance(runId, [], new Date(Date.now() + 31_000), { look: true });
    const [again] = captured.sent() as [TaskMessage];
    expect(again).toMatchObject({ runId, task: "b", queued: { queuedAs: lost.queued?.queuedAs } });
    expect(again.queued?.execution.input).toEqual({ fromA: 5 });

    const claims = await Promise.all([claim(lost, "w1"), claim(again, "w2")]);
    expect(claims.map((c) => c.kind).sort()).toEqual(["claimed", "wait"]);
    expect(
      (await eventsOf(stack, runId)).filter((e) => e.type === "TaskQueued" && e.task === "b"),
    ).toHaveLength(1);
  });

  it("nothing is queued on a run cancelled before its advance: a late first claim cancels its execution unrun", async () => {
    const { runId, b } = await runWithSuccessor();
    expect((await stack.api("POST", `/runs/${runId}/cancel`)).status).toBe(202);
    // an advance that comes after the cancel queues nothing
    await unqueueOnRun(runId, "b");
    await advance(runId);
    expect((await readRun(runId))?.queued?.b).toBeUndefined();
    // the message sent before the cancel: its claim puts the record, finds the run ended, cancels it
    expect((await claim(b, "w1")).kind).toBe("settled");
    expect(await recordOf(runId, "b")).toMatchObject({ status: "cancelled" });
  });
});
