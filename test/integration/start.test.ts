/**
 * A run's start (lib/engine/start.ts) against DynamoDB Local: a run whose start tasks leave
 * nothing to `advance` is one write, its run; each start task's message carries its record, which
 * its first claim puts (claim.ts). The task messages sent are captured, not delivered (no worker
 * takes them), and the stack runs no sweeper, so the test decides what happens when.
 */
import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sqs } from "../../lib/clients";
import { advance } from "../../lib/engine/advance";
import { claim } from "../../lib/engine/claim";
import type { TaskRecord } from "../../lib/engine/task-record";
import type { TaskMessage } from "../../lib/queue";
import { keys } from "../../lib/store/keys";
import { readItem } from "../../lib/store/run-state";
import { eventsOf, register } from "../helpers/runs";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack({ sweeper: false });

/** Task messages sent during a test: captured before they reach SQS, and never delivered. */
let sent: TaskMessage[] = [];
beforeEach(() => {
  sent = [];
  const capture = () => async (args: unknown) => {
    const input = (args as { input: { QueueUrl?: string; Entries?: Record<string, string>[] } }).input;
    if (!input.QueueUrl?.includes("tasks")) return { output: {}, response: {} };
    for (const e of input.Entries ?? []) sent.push(JSON.parse(e.MessageBody ?? "{}"));
    return { output: { Successful: [], Failed: [] }, response: {} };
  };
  sqs().middlewareStack.add(capture as never, { step: "initialize", name: "captureSends" });
});
afterEach(() => {
  sqs().middlewareStack.remove("captureSends");
});

const taskOf = (runId: string) => readItem<TaskRecord>(keys.task(runId, "only"));

describe("a run's start", () => {
  it("queues its start task without its record: shown queued, put by its first claim with TaskQueued after RunStarted", async () => {
    const name = `start-${randomUUID().slice(0, 8)}`;
    await register(stack, { name, tasks: { only: { action: "core.noop", input: { n: "{% input.n %}" } } } });
    const { runId } = await stack.client.createRun(name, { input: { n: 7 } });

    expect(await taskOf(runId)).toBeUndefined();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ runId, task: "only", queued: { execution: { input: { n: 7 } } } });
    // the API shows it queued, with its input, before any worker took it
    expect((await stack.client.getRun(runId)).tasks.only).toMatchObject({ status: "queued", attempts: 0 });
    expect(await stack.api("GET", `/runs/${runId}/tasks/only`)).toMatchObject({
      status: 200,
      body: { status: "queued", input: { n: 7 } },
    });

    const [first, second] = await Promise.all([
      claim(sent[0] as TaskMessage, "w1"),
      claim(sent[0] as TaskMessage, "w2"),
    ]);
    expect([first.kind, second.kind].sort()).toEqual(["claimed", "wait"]);
    expect(await taskOf(runId)).toMatchObject({ status: "running", attempt: 1, input: { n: 7 } });
    const events = (await eventsOf(stack, runId)).map((e) => `${e.type}${e.task ? ` ${e.task}` : ""}`);
    expect(events).toEqual(["RunCreated", "RunStarted", "TaskQueued only", "TaskStarted only"]);
  });

  it("a start task whose message was lost is dispatched by the run's look, and the message, if it comes, claims that record", async () => {
    const name = `start-${randomUUID().slice(0, 8)}`;
    await register(stack, { name, tasks: { only: { action: "core.noop" } } });
    const { runId } = await stack.client.createRun(name, {});
    const lost = sent[0] as TaskMessage;
    sent = [];

    // the run's look (the sweeper's, 30 s on) advances it: its start task is ready and has no record
    await advance(runId, [], new Date(), true);

    expect(await taskOf(runId)).toMatchObject({ status: "queued", attempt: 0 });
    expect(sent).toEqual([{ runId, task: "only" }]);
    // the first message, arriving late after all, finds the record and claims it as queued
    expect((await claim(lost, "w1")).kind).toBe("claimed");
    expect(await taskOf(runId)).toMatchObject({ status: "running", attempt: 1, workerId: "w1" });
    const queued = (await eventsOf(stack, runId)).filter((e) => e.type === "TaskQueued");
    expect(queued).toHaveLength(1);
  });
});
