/**
 * A run's start (lib/engine/start.ts) against DynamoDB Local: a run whose start tasks leave
 * nothing to `advance` is one write, its run; each start task's message carries its record, which
 * its first claim puts (claim.ts). The task messages sent are captured, not delivered (no worker
 * takes them), and the stack runs no sweeper, so the test decides what happens when.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { advance } from "../../lib/engine/advance";
import { claim } from "../../lib/engine/claim";
import type { TaskRecord } from "../../lib/engine/task-record";
import type { TaskMessage } from "../../lib/queue";
import { keys } from "../../lib/store/keys";
import { readItem } from "../../lib/store/run-state";
import { eventsOf, register } from "../helpers/runs";
import { captureTaskMessages } from "../helpers/sends";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack({ sweeper: false });

const captured = captureTaskMessages();

const taskOf = (runId: string) => readItem<TaskRecord>(keys.task(runId, "only"));

describe("a run's start", () => {
  it("queues its start task without its record: shown queued, put by its first claim with TaskQueued after RunStarted", async () => {
    const name = `start-${randomUUID().slice(0, 8)}`;
    await register(stack, { name, tasks: { only: { action: "core.noop", input: { n: "{% input.n %}" } } } });
    const { runId } = await stack.client.createRun(name, { input: { n: 7 } });

    expect(await taskOf(runId)).toBeUndefined();
    expect(captured.sent()).toHaveLength(1);
    expect(captured.sent()[0]).toMatchObject({
      runId,
      task: "only",
      queued: { execution: { input: { n: 7 } } },
    });
    // the API shows it queued, with its input, before any worker took it
    expect((await stack.client.getRun(runId)).tasks.only).toMatchObject({ status: "queued", attempts: 0 });
    expect(await stack.api("GET", `/runs/${runId}/tasks/only`)).toMatchObject({
      status: 200,
      body: { status: "queued", input: { n: 7 } },
    });

    const [first, second] = await Promise.all([
      claim(captured.sent()[0] as TaskMessage, "w1"),
      claim(captured.sent()[0] as TaskMessage, "w2"),
    ]);
    expect([first.kind, second.kind].sort()).toEqual(["claimed", "wait"]);
    expect(await taskOf(runId)).toMatchObject({ status: "running", attempt: 1, input: { n: 7 } });
    const events = (await eventsOf(stack, runId)).map((e) => `${e.type}${e.task ? ` ${e.task}` : ""}`);
    expect(events).toEqual(["RunCreated", "RunStarted", "TaskQueued only", "TaskStarted only"]);
  });

  it("a start task whose message was lost is sent again by the run's look 30 s on, with its record; of the copies one claims it", async () => {
    const name = `start-${randomUUID().slice(0, 8)}`;
    await register(stack, { name, tasks: { only: { action: "core.noop", input: { n: "{% input.n %}" } } } });
    const { runId } = await stack.client.createRun(name, { input: { n: 3 } });
    const [lost] = captured.sent() as [TaskMessage];
    captured.clear();

    // the run's looks (the sweeper's): before it is 30 s old, nothing; after, its message again
    await advance(runId, [], new Date(), { look: true });
    expect(captured.sent()).toEqual([]);
    await advance(runId, [], new Date(Date.now() + 31_000), { look: true });
    expect(await taskOf(runId)).toBeUndefined();
    expect(captured.sent()).toEqual([{ ...lost, queued: { ...lost.queued, execution: expect.anything() } }]);
    const [again] = captured.sent() as [TaskMessage];
    expect(again.queued?.queuedAs).toBe(lost.queued?.queuedAs);
    expect(again.queued?.execution.input).toEqual({ n: 3 });

    // the first message, arriving late after all, and the one sent again: one claim
    const claims = await Promise.all([claim(lost, "w1"), claim(again, "w2")]);
    expect(claims.map((c) => c.kind).sort()).toEqual(["claimed", "wait"]);
    const queued = (await eventsOf(stack, runId)).filter((e) => e.type === "TaskQueued");
    expect(queued).toHaveLength(1);
  });

  it("a create repeated with its Idempotency-Key sends a start task still without its record again, as queued the first time", async () => {
    const name = `start-${randomUUID().slice(0, 8)}`;
    await register(stack, { name, tasks: { only: { action: "core.noop", input: { n: "{% input.n %}" } } } });
    const idempotencyKey = randomUUID();
    const { runId } = await stack.client.createRun(name, { input: { n: 4 }, idempotencyKey });
    const [lost] = captured.sent() as [TaskMessage];
    captured.clear();

    // the client saw no answer (the API died after its write) and asks again
    expect((await stack.client.createRun(name, { input: { n: 4 }, idempotencyKey })).runId).toBe(runId);
    const [again] = captured.sent() as [TaskMessage];
    expect(again).toMatchObject({ runId, task: "only", queued: { queuedAs: lost.queued?.queuedAs } });
    expect(again.queued?.execution.input).toEqual({ n: 4 });
  });
});
