import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { register } from "../helpers/runs";
import { useLocalStack } from "../helpers/stack";
import { snapshotTable } from "../helpers/table";

const stack = useLocalStack();

const simple = {
  name: "simple",
  input: { type: "object", required: ["n"], properties: { n: { type: "number" } } },
  tasks: { only: { action: "core.echo", input: { n: "{% input.n %}" } } },
};

describe("workflows", () => {
  it("registers YAML and JSON, keeps the version for the same definition, bumps it for another", async () => {
    const yaml = readFileSync("examples/hello.yaml", "utf8");
    const first = await stack.api("PUT", "/workflows/hello", yaml, { "content-type": "application/yaml" });
    expect(first).toMatchObject({ status: 201, body: { name: "hello", version: 1 } });
    const again = await stack.api("PUT", "/workflows/hello", yaml, { "content-type": "application/yaml" });
    expect(again).toMatchObject({ status: 200, body: { name: "hello", version: 1 } });
    const fetched = await stack.api("GET", "/workflows/hello");
    expect(fetched.status).toBe(200);
    // the same definition as JSON, keys in another order: still the same version
    const asJson = Object.fromEntries(Object.entries(fetched.body.definition).reverse());
    expect(await stack.api("PUT", "/workflows/hello", asJson)).toMatchObject({
      status: 200,
      body: { version: 1 },
    });
    const changed = { ...fetched.body.definition, description: "changed" };
    expect(await stack.api("PUT", "/workflows/hello", changed)).toMatchObject({
      status: 201,
      body: { version: 2 },
    });
  });

  it("concurrent registrations of one definition create one version", async () => {
    const definition = { name: "racy", tasks: { a: { action: "core.noop" } } };
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => stack.api("PUT", "/workflows/racy", definition)),
    );
    expect(answers.map((a) => a.body.version)).toEqual(Array(10).fill(1));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
  });

  it("rejects an invalid definition with every problem and its path, and stores nothing", async () => {
    const before = await snapshotTable();
    const response = await stack.api("PUT", "/workflows/bad", {
      name: "bad",
      tasks: {
        a: { action: "core.nope", next: [{ when: "sometimes", do: ["ghost"] }] },
        b: { action: "core.echo", input: "{% 1 + %}", next: [{ do: ["c"] }] },
        c: { action: "core.noop", next: [{ do: ["b"] }] },
      },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe("InvalidWorkflow");
    const paths = response.body.error.details.map((d: { path: string }) => d.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "tasks.a.action",
        "tasks.a.next[0].when",
        "tasks.a.next[0].do[0]",
        "tasks.b.input",
      ]),
    );
    expect(JSON.stringify(response.body.error.details)).toMatch(/cycle/);
    expect(await snapshotTable()).toBe(before);
  });

  it("answers bad requests with a JSON 4xx and a code, and changes nothing", async () => {
    await register(stack, simple);
    const before = await snapshotTable();
    const cases: [string, string, unknown, Record<string, string> | undefined, number, string][] = [
      ["PUT", "/workflows/simple", "{not json", { "content-type": "application/json" }, 400, "MalformedBody"],
      ["PUT", "/workflows/simple", "a: [b", { "content-type": "application/yaml" }, 400, "MalformedBody"],
      [
        "POST",
        "/workflows/simple/runs",
        "{oops",
        { "content-type": "application/json" },
        400,
        "MalformedBody",
      ],
      ["GET", "/workflows/nope", undefined, undefined, 404, "WorkflowNotFound"],
      ["POST", "/workflows/nope/runs", { input: {} }, undefined, 404, "WorkflowNotFound"],
      ["GET", "/runs/does-not-exist", undefined, undefined, 404, "RunNotFound"],
      ["POST", "/runs/does-not-exist/trigger", undefined, undefined, 404, "RunNotFound"],
      ["POST", "/runs/does-not-exist/cancel", undefined, undefined, 404, "RunNotFound"],
      ["POST", "/workflows/simple/runs", { input: { n: "x" } }, undefined, 400, "InvalidInput"],
      [
        "POST",
        "/workflows/simple/runs",
        { input: { n: 1, pad: "x".repeat(300 * 1024) } },
        undefined,
        400,
        "InputTooLarge",
      ],
      ["POST", "/workflows/simple/runs", { input: { n: 1 }, start: "yes" }, undefined, 400, "InvalidRequest"],
      ["DELETE", "/workflows/simple", undefined, undefined, 405, "MethodNotAllowed"],
      ["GET", "/nowhere", undefined, undefined, 404, "RouteNotFound"],
    ];
    for (const [method, path, body, headers, status, code] of cases) {
      const response = await stack.api(method, path, body, headers);
      expect({ method, path, status: response.status, code: response.body?.error?.code }).toEqual({
        method,
        path,
        status,
        code,
      });
      expect(response.text).not.toMatch(/\bat .*\.ts:\d+/); // no stack traces
    }
    expect(await snapshotTable()).toBe(before);
  });

  it("GET /health", async () => {
    expect(await stack.api("GET", "/health")).toMatchObject({ status: 200, body: { status: "ok" } });
  });
});

describe("runs", () => {
  it("50 concurrent triggers of one pending run: one 202, 49 × 409 RunAlreadyStarted with the status", async () => {
    await register(stack, simple);
    for (let round = 0; round < 3; round++) {
      const created = await stack.api("POST", "/workflows/simple/runs", {
        input: { n: round },
        start: false,
      });
      expect(created).toMatchObject({ status: 201, body: { status: "pending" } });
      const { runId } = created.body;
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => stack.api("POST", `/runs/${runId}/trigger`)),
      );
      const accepted = answers.filter((a) => a.status === 202);
      const conflicts = answers.filter((a) => a.status === 409);
      expect(accepted).toHaveLength(1);
      expect(accepted[0]?.body).toEqual({ runId, status: "running" });
      expect(conflicts).toHaveLength(49);
      for (const c of conflicts) {
        expect(c.body.error.code).toBe("RunAlreadyStarted");
        expect(["running", "succeeded"]).toContain(c.body.error.status);
      }
      const events = (await stack.api("GET", `/runs/${runId}/events`)).body.events;
      expect(events.filter((e: { type: string }) => e.type === "RunStarted")).toHaveLength(1);
    }
  });

  it("20 concurrent creates with one Idempotency-Key create one run; another input with the key is 409", async () => {
    await register(stack, simple);
    const headers = { "idempotency-key": `key-${Date.now()}` };
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        stack.api("POST", "/workflows/simple/runs", { input: { n: 7 } }, headers),
      ),
    );
    const runIds = new Set(answers.map((a) => a.body.runId));
    expect(runIds.size).toBe(1);
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(19);
    const reused = await stack.api("POST", "/workflows/simple/runs", { input: { n: 8 } }, headers);
    expect(reused).toMatchObject({ status: 409, body: { error: { code: "IdempotencyKeyReused" } } });
  });

  it("cancels a run once; cancelling again or triggering it is 409", async () => {
    await register(stack, simple);
    const { runId } = (await stack.api("POST", "/workflows/simple/runs", { input: { n: 1 }, start: false }))
      .body;
    expect(await stack.api("POST", `/runs/${runId}/cancel`)).toMatchObject({
      status: 202,
      body: { status: "cancelled" },
    });
    expect(await stack.api("POST", `/runs/${runId}/cancel`)).toMatchObject({
      status: 409,
      body: { error: { code: "RunAlreadyEnded", status: "cancelled" } },
    });
    expect(await stack.api("POST", `/runs/${runId}/trigger`)).toMatchObject({
      status: 409,
      body: { error: { code: "RunAlreadyStarted", status: "cancelled" } },
    });
  });
});
