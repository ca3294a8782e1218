/**
 * The typed client (lib/client) against the live local API: every method, the answers typed as
 * the server sends them, and its errors with the API's codes, statuses and fields.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../infra/local/stack";
import { createClient, isOnceflowError, type OnceflowClient } from "../../lib/client";
import { rejection } from "../helpers/rejection";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack();
let client: OnceflowClient;

beforeAll(() => {
  client = createClient({ baseUrl: stack.apiUrl });
});

describe("the client against the local API", () => {
  it("workflows: put (YAML text and objects), get, versions, list; an invalid definition's problems", async () => {
    const yaml = readFileSync(join(repoRoot, "examples", "hello.yaml"), "utf8");
    const first = await client.putWorkflow("hello", yaml);
    expect(first).toEqual({ name: "hello", version: 1, created: true });
    expect(await client.putWorkflow("hello", yaml)).toEqual({ name: "hello", version: 1, created: false });
    const object = { name: "c-ok", tasks: { a: { action: "core.noop" } } };
    expect((await client.putWorkflow("c-ok", object)).created).toBe(true);

    const latest = await client.getWorkflow("hello");
    expect(latest).toMatchObject({ name: "hello", version: 1 });
    expect(Object.keys(latest.definition.tasks)).toContain("greet");
    const { versions } = await client.listVersions("hello");
    expect(versions.map((v) => v.version)).toEqual([1]);
    // the index behind GET /workflows is eventually consistent
    await expect
      .poll(async () => (await client.listWorkflows()).map((w) => w.name).sort())
      .toEqual(["c-ok", "hello"]);

    const invalid = await rejection(
      client.putWorkflow("bad", {
        name: "bad",
        tasks: { a: { action: "core.noop", next: [{ do: ["nowhere"] }] } },
      }),
    );
    expect(invalid).toMatchObject({ code: "InvalidWorkflow", status: 400, request: "PUT /workflows/bad" });
    expect(invalid.problems.map((p) => p.path)).toContain("tasks.a.next[0].do[0]");
    expect((await rejection(client.getWorkflow("nothing"))).code).toBe("WorkflowNotFound");
  });

  it("runs: create with a key (replayed, reused), wait, get, events, list and iterate", async () => {
    const key = `k-${Date.now()}`;
    const created = await client.createRun("hello", { input: { name: "client" }, idempotencyKey: key });
    expect(created).toMatchObject({ status: "running", created: true });
    const again = await client.createRun("hello", { input: { name: "client" }, idempotencyKey: key });
    expect(again).toEqual({ runId: created.runId, status: expect.any(String), created: false });
    const reused = await rejection(
      client.createRun("hello", { input: { name: "other" }, idempotencyKey: key }),
    );
    expect(reused).toMatchObject({
      code: "IdempotencyKeyReused",
      status: 409,
      fields: { runId: created.runId },
    });
    const badInput = await rejection(client.createRun("hello", { input: { nom: 1 } }));
    expect(badInput).toMatchObject({ code: "InvalidInput", status: 400 });

    const polls: string[] = [];
    const run = await client.waitForRun(created.runId, {
      timeoutMs: 30_000,
      intervalMs: 100,
      onPoll: (r) => polls.push(r.status),
    });
    expect(run.status).toBe("succeeded");
    expect(polls.at(-1)).toBe("succeeded");
    expect(run.output).toEqual({ greeting: "HELLO, CLIENT!", recovered: true });
    expect(run.tasks.flaky).toMatchObject({ status: "failed", error: { code: "TaskFailed" } });
    expect((await client.getRun(created.runId)).endedAt).toBe(run.endedAt);

    const events = await client.getEvents(created.runId);
    expect(events[0]).toMatchObject({ seq: 1, type: "RunCreated" });
    expect(events.at(-1)?.type).toBe("RunSucceeded");
    expect((await rejection(client.getRun("no-such-run"))).code).toBe("RunNotFound");

    const second = await client.createRun("c-ok");
    await client.waitForRun(second.runId, { intervalMs: 100 });
    await expect
      .poll(async () => (await client.listRuns({ workflow: "c-ok" })).runs.map((r) => r.runId))
      .toEqual([second.runId]);
    // one run a page, through every page
    const all: string[] = [];
    for await (const r of client.iterateRuns({ limit: 1 })) all.push(r.runId);
    expect(all).toHaveLength(new Set(all).size);
    expect(all).toEqual(expect.arrayContaining([created.runId, second.runId]));
    const query = await rejection(client.listRuns({ limit: 500 }));
    expect(query).toMatchObject({ code: "InvalidQuery", status: 400 });
    expect(query.problems.map((p) => p.path)).toEqual(["limit"]);
  });

  it("trigger, cancel and redrive, with their 409s", async () => {
    const pending = await client.createRun("hello", { input: { name: "later" }, start: false });
    expect(pending.status).toBe("pending");
    expect(await client.triggerRun(pending.runId)).toEqual({ runId: pending.runId, status: "running" });
    expect(await rejection(client.triggerRun(pending.runId))).toMatchObject({
      code: "RunAlreadyStarted",
      status: 409,
      fields: { runId: pending.runId },
    });
    expect(await client.cancelRun(pending.runId)).toEqual({ runId: pending.runId, status: "cancelled" });
    expect(await rejection(client.cancelRun(pending.runId))).toMatchObject({
      code: "RunAlreadyEnded",
      fields: { status: "cancelled" },
    });
    expect((await client.waitForRun(pending.runId)).status).toBe("cancelled");

    await client.putWorkflow("c-fails", { name: "c-fails", tasks: { a: { action: "core.fail" } } });
    const failing = await client.createRun("c-fails");
    expect((await client.waitForRun(failing.runId, { intervalMs: 100 })).status).toBe("failed");
    const redriven = await client.redriveRun(failing.runId);
    expect(redriven).toMatchObject({ runId: failing.runId, status: "running", redriveCount: 1 });
    expect((await client.waitForRun(failing.runId, { intervalMs: 100 })).redriveCount).toBe(1);
    expect((await rejection(client.redriveRun(pending.runId))).code).toBe("RunNotRedrivable");
  });

  it("callbacks: complete, heartbeat, not found", async () => {
    await client.putWorkflow("c-wait", {
      name: "c-wait",
      tasks: { ask: { action: "core.callback", heartbeatSeconds: 60 } },
      output: "{% tasks.ask.output %}",
    });
    const { runId } = await client.createRun("c-wait");
    let token: string | undefined;
    await expect
      .poll(async () => {
        const issued = (await client.getEvents(runId)).find((e) => e.type === "CallbackIssued");
        token = issued?.detail?.token as string | undefined;
        return token;
      })
      .toBeTruthy();
    const beat = await client.heartbeatCallback(token as string);
    expect(Date.parse(beat.heartbeatUntil)).toBeGreaterThan(Date.now());
    const answer = await client.completeCallback(token as string, { output: { approved: true } });
    expect(answer).toEqual({ runId, task: "ask", status: "succeeded", changed: true });
    expect((await client.waitForRun(runId, { intervalMs: 100 })).output).toEqual({ approved: true });
    const other = await rejection(client.completeCallback(token as string, { output: 2 }));
    expect(other).toMatchObject({ code: "CallbackAlreadyCompleted", status: 409 });
    expect(
      isOnceflowError(await rejection(client.heartbeatCallback("not-a-token")), "CallbackNotFound"),
    ).toBe(true);
  });

  it("the API itself: health and the OpenAPI document; a wrong URL is RouteNotFound, no API NetworkError", async () => {
    expect(await client.health()).toEqual({ status: "ok" });
    expect((await client.getOpenApi()).openapi).toBe("3.1.0");
    const elsewhere = createClient({ baseUrl: `${stack.apiUrl}/v9` });
    expect(await rejection(elsewhere.health())).toMatchObject({ code: "RouteNotFound", status: 404 });
    const nobody = createClient({ baseUrl: "http://127.0.0.1:9" });
    expect(await rejection(nobody.health())).toMatchObject({ code: "NetworkError", status: 0 });
  });
});
