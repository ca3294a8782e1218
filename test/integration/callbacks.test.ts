/**
 * Callback tasks (`core.callback`) on the local stack: the token is issued (event, notify POST),
 * the run shows the task waiting, `POST /callbacks/{token}` completes it exactly once however many
 * identical callbacks race, a different body is refused (409), unknown and malformed tokens are
 * 404, heartbeats keep it waiting and their absence times it out, and a cancelled run ends it.
 */
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { db } from "../../lib/clients";
import { config } from "../../lib/config";
import { sendTasks } from "../../lib/queue";
import { keys } from "../../lib/store/keys";
import { eventsOf, type RunEventView, register, waitForRun } from "../helpers/runs";
import { type SinkRequest, useSink } from "../helpers/sink";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack({ pollerConcurrency: { worker: 8, advance: 4 } });
const sinkFixture = useSink();
const sink = () => sinkFixture.sink;

/** `wait` (core.callback, notified at the sink) then `after` (core.http to the sink, carrying the callback's output). */
function waitThenAfter(name: string, wait: Record<string, unknown> = {}) {
  return {
    name,
    tasks: {
      wait: {
        action: "core.callback",
        input: { notifyUrl: `${sink().url}/notify/${name}`, headers: { "X-Team": "ops" } },
        ...wait,
        next: [
          { when: "succeeded", do: ["after"] },
          { when: "failed", do: ["recover"] },
        ],
      },
      after: {
        action: "core.http",
        input: { url: `${sink().url}/after/${name}`, body: { got: "{% tasks.wait.output %}" } },
      },
      recover: { action: "core.http", input: { url: `${sink().url}/recover/${name}`, body: {} } },
    },
  };
}

async function start(name: string): Promise<string> {
  const created = await stack.client.createRun(name, { input: {} });
  expect(created.created).toBe(true);
  return created.runId;
}

/** Waits for the notify of `runId` at the sink and returns it. */
async function notified(name: string, runId: string, count = 1): Promise<SinkRequest> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const mine = sink()
      .requestsTo(`/notify/${name}`)
      .filter((r) => (r.json as { runId?: string })?.runId === runId);
    if (mine.length >= count) return mine[count - 1] as SinkRequest;
    if (Date.now() > deadline) throw new Error(`no notify for ${runId}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const tokenOf = (request: SinkRequest) => (request.json as { token: string }).token;
const ofType = (events: RunEventView[], type: string) => events.filter((e) => e.type === type);
const callback = (token: string, body: unknown) =>
  stack.api("POST", `/callbacks/${encodeURIComponent(token)}`, body);

describe("callback tasks", () => {
  it("10 identical concurrent callbacks: one completion, ten 200s; then a different body 409; unknown, malformed 404; bad body 400", async () => {
    await register(stack, waitThenAfter("race"));
    // five runs, to catch races that happen only sometimes
    for (let round = 0; round < 5; round++) {
      const runId = await start("race");
      const notify = await notified("race", runId);
      const token = tokenOf(notify);
      expect(notify.method).toBe("POST");
      expect(notify.json).toEqual({ token, runId, task: "wait" });
      expect(notify.headers["idempotency-key"]).toBe(`${runId}/wait/-`);
      expect(notify.headers["x-onceflow-attempt"]).toBe("1");
      expect(notify.headers["x-team"]).toBe("ops");

      const events = await eventsOf(stack, runId);
      expect(ofType(events, "CallbackIssued").map((e) => e.detail?.token)).toEqual([token]);
      const waiting = await waitForRun(stack, runId, (run) => run.tasks.wait?.waitingFor !== undefined);
      expect(waiting.status).toBe("running");
      expect(waiting.tasks.wait).toMatchObject({
        status: "running",
        attempts: 1,
        waitingFor: { callback: true },
      });

      // a bad body changes nothing
      const bad = await callback(token, { output: 1, error: { message: "x" } });
      expect(bad.status).toBe(400);
      expect(bad.body.error.code).toBe("InvalidRequest");
      expect((await callback(token, { error: { code: 5 } })).status).toBe(400);
      expect((await callback(token, [1])).status).toBe(400);
      expect((await stack.client.getRun(runId)).tasks.wait?.status).toBe("running");

      // ten identical callbacks released together
      const body = { output: { approved: true, round } };
      const answers = await Promise.all(Array.from({ length: 10 }, () => callback(token, body)));
      expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
      expect(answers.filter((a) => a.body.changed === true)).toHaveLength(1);
      for (const a of answers) expect(a.body).toMatchObject({ runId, task: "wait", status: "succeeded" });

      const done = await waitForRun(stack, runId);
      expect(done.status).toBe("succeeded");
      const after = sink()
        .requestsTo("/after/race")
        .filter((r) => r.headers["idempotency-key"] === `${runId}/after/-`);
      expect(after).toHaveLength(1);
      expect(after[0]?.json).toEqual({ got: { approved: true, round } });
      const history = await eventsOf(stack, runId);
      expect(ofType(history, "CallbackReceived")).toHaveLength(1);
      expect(ofType(history, "TaskSucceeded").filter((e) => e.task === "wait")).toHaveLength(1);
      expect(ofType(history, "TaskQueued").filter((e) => e.task === "after")).toHaveLength(1);

      // the same body again: 200, nothing changed; another body: 409; heartbeat after completion: 409
      const again = await callback(token, body);
      expect(again.status).toBe(200);
      expect(again.body.changed).toBe(false);
      const other = await callback(token, { output: { approved: false } });
      expect(other.status).toBe(409);
      expect(other.body.error.code).toBe("CallbackAlreadyCompleted");
      expect((await stack.api("POST", `/callbacks/${token}/heartbeat`)).status).toBe(409);
      expect(ofType(await eventsOf(stack, runId), "CallbackReceived")).toHaveLength(1);
    }

    // unknown (a well-formed token with another secret) and malformed tokens: 404
    const runId = await start("race");
    const token = tokenOf(await notified("race", runId));
    const forged = `${token.split(".")[0]}.${"0".repeat(32)}`;
    const unknown = await callback(forged, { output: 1 });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("CallbackNotFound");
    expect((await callback("not-a-token", { output: 1 })).status).toBe(404);
    expect(
      (await callback(`${Buffer.from("{}").toString("base64url")}.${"a".repeat(32)}`, { output: 1 })).status,
    ).toBe(404);
    expect((await stack.api("POST", "/callbacks/nope/heartbeat")).status).toBe(404);
    expect((await stack.client.getRun(runId)).tasks.wait?.status).toBe("running");
    expect((await callback(token, { output: "finally" })).status).toBe(200);
    expect((await waitForRun(stack, runId)).status).toBe("succeeded");
  }, 120_000);

  it("an {error} callback fails the task without retry and its when: failed branch runs", async () => {
    await register(stack, waitThenAfter("refused"));
    const runId = await start("refused");
    const token = tokenOf(await notified("refused", runId));
    const failed = await callback(token, { error: { code: "Rejected", message: "the reviewer said no" } });
    expect(failed.status).toBe(200);
    expect(failed.body).toMatchObject({ status: "failed", changed: true });
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("succeeded"); // the failure was handled
    expect(run.tasks.wait).toMatchObject({
      status: "failed",
      attempts: 1,
      error: { code: "Rejected", message: "the reviewer said no" },
    });
    expect(run.tasks.recover.status).toBe("succeeded");
    expect(run.tasks.after).toBeUndefined();
    expect(sink().requestsTo("/recover/refused")).toHaveLength(1);
    // the same error again: 200 unchanged; an output now: 409
    expect(
      (await callback(token, { error: { message: "the reviewer said no", code: "Rejected" } })).body.changed,
    ).toBe(false);
    expect((await callback(token, { output: 1 })).status).toBe(409);
  }, 60_000);

  it("no heartbeat within heartbeatSeconds: HeartbeatTimedOut, a retry issues a new token, the old one 404s", async () => {
    await register(
      stack,
      waitThenAfter("silent", { heartbeatSeconds: 2, retry: { maxAttempts: 2, intervalSeconds: 0 } }),
    );
    const runId = await start("silent");
    const first = tokenOf(await notified("silent", runId, 1));
    const second = tokenOf(await notified("silent", runId, 2)); // after the first timed out
    expect(second).not.toBe(first);
    const late = await callback(first, { output: 1 });
    expect(late.status).toBe(404);
    expect(late.body.error.code).toBe("CallbackNotFound");
    const run = await waitForRun(stack, runId);
    expect(run.tasks.wait).toMatchObject({
      status: "failed",
      attempts: 2,
      error: { code: "HeartbeatTimedOut" },
    });
    expect(run.tasks.recover.status).toBe("succeeded");
    const events = await eventsOf(stack, runId);
    expect(ofType(events, "CallbackIssued")).toHaveLength(2);
    expect(ofType(events, "TaskRetrying").map((e) => e.detail?.error?.code)).toEqual(["HeartbeatTimedOut"]);
    expect((await callback(second, { output: 1 })).status).toBe(404); // expired
  }, 60_000);

  it("heartbeats every second keep it waiting past the heartbeat window; then it completes", async () => {
    await register(stack, waitThenAfter("beating", { heartbeatSeconds: 2, retry: { maxAttempts: 1 } }));
    const runId = await start("beating");
    const token = tokenOf(await notified("beating", runId));
    for (let beat = 0; beat < 6; beat++) {
      const answer = await stack.api("POST", `/callbacks/${token}/heartbeat`);
      expect(answer.status).toBe(200);
      expect(Date.parse(answer.body.heartbeatUntil)).toBeGreaterThan(Date.now());
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const view = await stack.client.getRun(runId);
    expect(view.tasks.wait).toMatchObject({ status: "running", waitingFor: { callback: true } });
    expect((await callback(token, { output: "late but alive" })).body).toMatchObject({ changed: true });
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("succeeded");
    expect(sink().requestsTo("/after/beating")[0]?.json).toEqual({ got: "late but alive" });
    expect(ofType(await eventsOf(stack, runId), "TaskRetrying")).toHaveLength(0);
  }, 60_000);

  it("a run cancelled while its task waits for a callback ends cancelled; the token then 404s", async () => {
    await register(stack, waitThenAfter("cancelled"));
    const runId = await start("cancelled");
    const token = tokenOf(await notified("cancelled", runId));
    await waitForRun(stack, runId, (run) => run.tasks.wait?.waitingFor !== undefined);
    expect((await stack.api("POST", `/runs/${runId}/cancel`)).status).toBe(202);
    const run = await waitForRun(stack, runId, (r) => r.tasks.wait?.status === "cancelled");
    expect(run.status).toBe("cancelled");
    const late = await callback(token, { output: 1 });
    expect(late.status).toBe(404);
    expect((await stack.api("POST", `/callbacks/${token}/heartbeat`)).status).toBe(404);
    expect(sink().requestsTo("/after/cancelled")).toHaveLength(0);
  }, 60_000);

  it("a notify answered 503 fails the attempt (retryable): the retry notifies a new token", async () => {
    await register(stack, waitThenAfter("flaky", { retry: { maxAttempts: 3, intervalSeconds: 0 } }));
    sink().respond("/notify/flaky", [503, 200]);
    const runId = await start("flaky");
    const first = await notified("flaky", runId, 1);
    const second = await notified("flaky", runId, 2);
    expect(second.headers["x-onceflow-attempt"]).toBe("2");
    expect(tokenOf(second)).not.toBe(tokenOf(first));
    expect((await callback(tokenOf(first), { output: 1 })).status).toBe(404);
    expect((await callback(tokenOf(second), { output: 2 })).status).toBe(200);
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("succeeded");
    expect(run.tasks.wait.attempts).toBe(2);
  }, 60_000);

  it("a redelivered task message notifies again (same token) only while the notify is not recorded", async () => {
    await register(stack, waitThenAfter("redelivered"));
    const runId = await start("redelivered");
    const token = tokenOf(await notified("redelivered", runId));
    await waitForRun(stack, runId, (run) => run.tasks.wait?.waitingFor !== undefined);
    const settle = () => new Promise((resolve) => setTimeout(resolve, 1500));
    const count = () =>
      sink()
        .requestsTo("/notify/redelivered")
        .filter((r) => (r.json as { runId?: string }).runId === runId).length;

    // notify recorded: a redelivery does nothing
    await sendTasks([{ runId, task: "wait" }], "redelivery-1");
    await settle();
    expect(count()).toBe(1);

    // a worker that died after issuing the token, before recording the notify: notified again
    await db().send(
      new UpdateCommand({
        TableName: config.tableName(),
        Key: keys.task(runId, "wait"),
        UpdateExpression: "REMOVE notifiedAt",
      }),
    );
    await sendTasks([{ runId, task: "wait" }], "redelivery-2");
    const again = await notified("redelivered", runId, 2);
    expect(tokenOf(again)).toBe(token);
    expect(again.headers["x-onceflow-attempt"]).toBe("1");
    expect(ofType(await eventsOf(stack, runId), "CallbackIssued")).toHaveLength(1);
    expect((await callback(token, { output: "ok" })).status).toBe(200);
    expect((await waitForRun(stack, runId)).status).toBe("succeeded");
  }, 60_000);

  it("cancelling a keyed run waiting for a callback passes its concurrency key on at once", async () => {
    await register(stack, { ...waitThenAfter("keyed"), concurrencyKey: "{% input.repo %}" });
    const first = await stack.client.createRun("keyed", { input: { repo: "r" } });
    const second = await stack.client.createRun("keyed", { input: { repo: "r" } });
    expect([first.status, second.status]).toEqual(["running", "waiting"]);
    await notified("keyed", first.runId);
    expect((await stack.api("POST", `/runs/${first.runId}/cancel`)).status).toBe(202);
    expect((await waitForRun(stack, first.runId)).status).toBe("cancelled");
    // the next run of the key gets it and starts waiting for its own callback
    const token = tokenOf(await notified("keyed", second.runId));
    expect((await callback(token, { output: 1 })).status).toBe(200);
    expect((await waitForRun(stack, second.runId)).status).toBe("succeeded");
  }, 60_000);

  it("with-items callback tasks: one token per item, each completed by its own callback", async () => {
    await register(stack, {
      name: "per-item",
      tasks: {
        each: {
          action: "core.callback",
          withItems: ["a", "b", "c"],
          concurrency: 2,
          input: { notifyUrl: `${sink().url}/notify/per-item` },
        },
      },
      output: "{% tasks.each.output %}",
    });
    const runId = await start("per-item");
    const first = await notified("per-item", runId, 2);
    const second = sink()
      .requestsTo("/notify/per-item")
      .filter((r) => (r.json as { runId: string }).runId === runId)
      .find((r) => r !== first) as SinkRequest;
    const items = [first, second].map((r) => (r.json as { item: number }).item).sort();
    expect(items).toEqual([0, 1]); // concurrency 2: the third waits for a slot
    expect(first.headers["idempotency-key"]).toBe(`${runId}/each/${(first.json as { item: number }).item}`);
    const view = await stack.client.getRun(runId);
    expect(view.tasks.each?.items).toMatchObject({ total: 3, running: 2, queued: 1 });
    for (const r of [first, second]) {
      const item = (r.json as { item: number }).item;
      const answer = await callback(tokenOf(r), { output: `done ${item}` });
      expect(answer.body).toMatchObject({ runId, task: "each", item, status: "succeeded", changed: true });
    }
    const third = await notified("per-item", runId, 3);
    expect((third.json as { item: number }).item).toBe(2);
    expect((await callback(tokenOf(third), { output: "done 2" })).status).toBe(200);
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("succeeded");
    expect(run.output).toEqual(["done 0", "done 1", "done 2"]);
  }, 60_000);

  it("cancelling a run whose with-items callbacks wait cancels them at once, and their tokens 404", async () => {
    await register(stack, {
      name: "per-item-cancel",
      concurrencyKey: "{% 'one' %}",
      tasks: {
        each: {
          action: "core.callback",
          withItems: ["a", "b"],
          input: { notifyUrl: `${sink().url}/notify/pic` },
        },
      },
    });
    const runId = await start("per-item-cancel");
    const notifies = [await notified("pic", runId, 2)].concat(
      sink()
        .requestsTo("/notify/pic")
        .filter((r) => (r.json as { runId: string }).runId === runId),
    );
    const next = await stack.client.createRun("per-item-cancel");
    expect(next.status).toBe("waiting");
    expect((await stack.api("POST", `/runs/${runId}/cancel`)).status).toBe(202);
    // the run ends first; its waiting items are cancelled by the same call and counted through
    // their completions, so the counts follow within moments (no timeout is waited for)
    const run = await waitForRun(stack, runId, (r) => r.tasks.each.items.cancelled === 2, 10_000);
    expect(run.status).toBe("cancelled");
    expect(run.tasks.each.items).toMatchObject({ total: 2, running: 0, cancelled: 2 });
    for (const r of notifies) expect((await callback(tokenOf(r), { output: 1 })).status).toBe(404);
    // nothing of the cancelled run waits any more: its key passed on without any timeout
    await waitForRun(stack, next.runId, (v) => v.status !== "waiting", 10_000);
  }, 60_000);
});
