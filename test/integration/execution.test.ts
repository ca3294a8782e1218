import { readFileSync } from "node:fs";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { handler as advanceHandler } from "../../functions/advance";
import { handler as workerHandler } from "../../functions/worker";
import { defineAction } from "../../lib/actions";
import { sqs } from "../../lib/clients";
import { config } from "../../lib/config";
import { lambdaContext, sqsEvent } from "../helpers/lambda-events";
import { eventsOf, register, waitForQueueDrained, waitForRun, waitForRunRecord } from "../helpers/runs";
import { useSink } from "../helpers/sink";
import { useLocalStack } from "../helpers/stack";
import { snapshotTable } from "../helpers/table";

/** A typed action: `run` is counted, so a bad input can be shown never to reach it. */
const typedRuns: unknown[] = [];
defineAction({
  name: "test.typed",
  input: {
    type: "object",
    required: ["order"],
    properties: { order: { type: "object", required: ["qty"], properties: { qty: { type: "integer" } } } },
  },
  run: (input) => {
    typedRuns.push(input);
    return { double: input.order.qty * 2 };
  },
});

const stack = useLocalStack();
const sinkFixture = useSink();

const sink = () => sinkFixture.sink;

describe("graph execution", () => {
  it("runs the README example: parallel branches, a handled failure, a join, the run output", async () => {
    await register(stack, parse(readFileSync("examples/hello.yaml", "utf8")));
    const created = await stack.client.createRun("hello", { input: { name: "Ada" } });
    expect(created).toMatchObject({ created: true, status: "running" });
    const run = await waitForRun(stack, created.runId);
    expect(run.status).toBe("succeeded");
    expect(run.output).toEqual({ greeting: "HELLO, ADA!", recovered: true });
    expect(run.tasks).toMatchObject({
      greet: { status: "succeeded", attempts: 1 },
      shout: { status: "succeeded" },
      wait: { status: "succeeded" },
      flaky: { status: "failed", attempts: 1 },
      recover: { status: "succeeded" },
      summarize: { status: "succeeded" },
    });
    const events = await eventsOf(stack, run.runId);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events[0]?.type).toBe("RunCreated");
    expect(events.at(-1)?.type).toBe("RunSucceeded");
    expect(events.filter((e) => e.type === "TaskQueued" && e.task === "summarize")).toHaveLength(1);
    const order = (type: string, task: string) => events.findIndex((e) => e.type === type && e.task === task);
    expect(order("TaskSucceeded", "shout")).toBeLessThan(order("TaskQueued", "summarize"));
    expect(order("TaskSucceeded", "recover")).toBeLessThan(order("TaskQueued", "summarize"));
  });

  it("an unhandled failure fails the run with the task's error; `always` still runs", async () => {
    await register(stack, {
      name: "unhandled",
      tasks: {
        boom: {
          action: "core.fail",
          input: { message: "kaboom" },
          next: [{ when: "always", do: ["cleanup"] }],
        },
        cleanup: { action: "core.noop" },
      },
    });
    const { runId } = await stack.client.createRun("unhandled", { input: {} });
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ code: "TaskFailed", task: "boom" });
    expect(run.error.message).toContain("kaboom");
    expect(run.tasks.cleanup.status).toBe("succeeded");
  });

  it("core.http calls the server exactly once with Idempotency-Key and X-Onceflow-Attempt", async () => {
    sink().reset();
    await register(stack, {
      name: "call",
      tasks: {
        call: {
          action: "core.http",
          input: { url: `${sink().url}/hook`, body: { hello: "{% input.who %}" } },
        },
      },
    });
    const { runId } = await stack.client.createRun("call", { input: { who: "sink" } });
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("succeeded");
    expect(run.output).toEqual({ call: { status: 200, body: { ok: true } } });
    const calls = sink().requestsTo("/hook");
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      method: "POST",
      json: { hello: "sink" },
      headers: { "idempotency-key": `${runId}/call/-`, "x-onceflow-attempt": "1" },
    });
  });

  it("retries a 5xx with the same Idempotency-Key and the next attempt number; a 4xx is not retried", async () => {
    sink().reset();
    sink().respond("/flaky", [503, 200]);
    sink().respond("/bad", 400);
    await register(stack, {
      name: "retrying",
      tasks: {
        flaky: {
          action: "core.http",
          input: { url: `${sink().url}/flaky` },
          retry: { maxAttempts: 3, intervalSeconds: 1, backoffRate: 1 },
          next: [{ do: ["bad"] }],
        },
        bad: {
          action: "core.http",
          input: { url: `${sink().url}/bad` },
          retry: { maxAttempts: 3, intervalSeconds: 1 },
        },
      },
    });
    const { runId } = await stack.client.createRun("retrying", { input: {} });
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("failed");
    expect(run.tasks.flaky).toMatchObject({ status: "succeeded", attempts: 2 });
    expect(run.tasks.bad).toMatchObject({
      status: "failed",
      attempts: 1,
      error: { code: "HttpStatusError" },
    });
    const flaky = sink().requestsTo("/flaky");
    expect(flaky.map((r) => r.headers["x-onceflow-attempt"])).toEqual(["1", "2"]);
    expect(new Set(flaky.map((r) => r.headers["idempotency-key"]))).toEqual(new Set([`${runId}/flaky/-`]));
    // the retry really waited (message visibility), it was not redelivered at once
    expect((flaky[1]?.at ?? 0) - (flaky[0]?.at ?? 0)).toBeGreaterThanOrEqual(400);
    expect(sink().requestsTo("/bad")).toHaveLength(1);
  });

  it("a task that times out is aborted and retried as a new attempt", async () => {
    await register(stack, {
      name: "slow",
      tasks: {
        nap: {
          action: "core.sleep",
          input: { seconds: 5 },
          timeoutSeconds: 1,
          retry: { maxAttempts: 2, intervalSeconds: 0, backoffRate: 1 },
        },
      },
    });
    const { runId } = await stack.client.createRun("slow", { input: {} });
    const run = await waitForRun(stack, runId);
    expect(run.tasks.nap).toMatchObject({ status: "failed", attempts: 2, error: { code: "TaskTimedOut" } });
  });

  it("a defineAction task given input its schema refuses fails after one attempt with InvalidActionInput", async () => {
    await register(stack, {
      name: "typed",
      tasks: {
        typed: {
          action: "test.typed",
          input: { order: "{% input.order %}" },
          retry: { maxAttempts: 3, intervalSeconds: 0, backoffRate: 1 },
        },
      },
    });
    const good = await stack.client.createRun("typed", { input: { order: { qty: 2 } } });
    expect(await waitForRun(stack, good.runId)).toMatchObject({
      status: "succeeded",
      output: { typed: { double: 4 } },
    });
    typedRuns.length = 0;

    const bad = await stack.client.createRun("typed", { input: { order: { qty: "two" } } });
    const run = await waitForRun(stack, bad.runId);
    const message = "the input of test.typed does not match its schema: input.order.qty must be an integer";
    expect(run.status).toBe("failed");
    // the run fails with TaskFailed; the task's own error (view and event) is InvalidActionInput
    expect(run.error).toEqual({
      code: "TaskFailed",
      task: "typed",
      message: `task typed failed: ${message}`,
    });
    expect(run.tasks.typed).toEqual({
      status: "failed",
      attempts: 1,
      error: { code: "InvalidActionInput", message },
    });
    expect(typedRuns).toEqual([]); // run was never called
    const events = await eventsOf(stack, bad.runId);
    expect(events.filter((e) => e.type === "TaskStarted")).toHaveLength(1);
    expect(events.filter((e) => e.type === "TaskRetrying")).toHaveLength(0);
    expect(events.find((e) => e.type === "TaskFailed")).toMatchObject({
      task: "typed",
      attempt: 1,
      detail: { error: { code: "InvalidActionInput", message } },
    });
  });
});

describe("exactly once under duplicates", () => {
  it("a completion delivered twice dispatches the successor once and writes nothing the second time", async () => {
    sink().reset();
    await register(stack, {
      name: "dup-completion",
      tasks: {
        first: { action: "core.noop", next: [{ do: ["second"] }] },
        second: { action: "core.http", input: { url: `${sink().url}/second` } },
      },
    });
    for (let round = 0; round < 5; round++) {
      sink().reset();
      const held = sink().holdNext(1);
      const { runId } = await stack.client.createRun("dup-completion", { input: { round } });
      await held; // `second` was dispatched and is running, held by the sink
      const completion = { runId, task: "first", attempt: 1 };
      const before = await snapshotTable(runId);
      // the same completion again: twice through the real queue (new dedup ids, as after the
      // 5-minute window) and twice straight into concurrent advance handlers
      for (const copy of ["a", "b"]) {
        await sqs().send(
          new SendMessageCommand({
            QueueUrl: config.completionsQueueUrl(),
            MessageBody: JSON.stringify(completion),
            MessageGroupId: runId,
            MessageDeduplicationId: `${runId}-dup-${copy}`,
          }),
        );
      }
      const direct = await Promise.all([
        advanceHandler(sqsEvent([completion]), lambdaContext),
        advanceHandler(sqsEvent([completion]), lambdaContext),
      ]);
      expect(direct).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
      await waitForQueueDrained(config.completionsQueueUrl()); // the queued copies were handled too
      expect(await snapshotTable(runId)).toBe(before);
      sink().release();
      const run = await waitForRun(stack, runId);
      expect(run.status).toBe("succeeded");
      expect(sink().requestsTo("/second")).toHaveLength(1);
      const queued = (await eventsOf(stack, runId)).filter(
        (e) => e.type === "TaskQueued" && e.task === "second",
      );
      expect(queued).toHaveLength(1);
    }
  });

  it("the same task message taken by 12 workers at once runs the action once (F3)", async () => {
    await register(stack, {
      name: "contended",
      tasks: { only: { action: "core.http", input: { url: `${sink().url}/contended` } } },
    });
    for (let round = 0; round < 10; round++) {
      sink().reset();
      const { runId } = await stack.client.createRun("contended", { input: { round } });
      const message = { runId, task: "only" };
      // 12 direct worker invocations race the stack's own poller for the same execution
      await Promise.all(Array.from({ length: 12 }, () => workerHandler(sqsEvent([message]), lambdaContext)));
      const run = await waitForRun(stack, runId);
      expect(run.status).toBe("succeeded");
      expect(run.tasks.only.attempts).toBe(1);
      expect(sink().requestsTo("/contended")).toHaveLength(1);
      const started = (await eventsOf(stack, runId)).filter((e) => e.type === "TaskStarted");
      expect(started).toHaveLength(1);
    }
  });

  it("cancelling stops new dispatches: a running task finishes and is recorded, its successor never starts", async () => {
    sink().reset();
    await register(stack, {
      name: "cancellable",
      tasks: {
        working: { action: "core.http", input: { url: `${sink().url}/working` }, next: [{ do: ["after"] }] },
        after: { action: "core.http", input: { url: `${sink().url}/after` } },
      },
    });
    const held = sink().holdNext(1);
    const { runId } = await stack.client.createRun("cancellable", { input: {} });
    await held;
    expect(await stack.api("POST", `/runs/${runId}/cancel`)).toMatchObject({ status: 202 });
    sink().release();
    const run = await waitForRun(stack, runId, (r) => r.tasks.working?.status === "succeeded");
    // the advance after `working` settled (its worker's) is what could have started `after`: once it
    // wound the run down, nothing runs and the run leaves the sweeper's index
    await waitForRunRecord(runId, (r) => r.sweepShard === undefined);
    const after = await stack.client.getRun(runId);
    expect(after.status).toBe("cancelled");
    expect(run.tasks.after).toBeUndefined();
    expect(after.tasks.after).toBeUndefined();
    expect(sink().requestsTo("/after")).toHaveLength(0);
  });
});
