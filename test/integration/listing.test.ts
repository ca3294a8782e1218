/**
 * GET /workflows, GET /workflows/{name}/versions and GET /runs on the local stack (DynamoDB
 * Local's `list` index, created from serverless.yml): what a user browsing runs sees.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { register, waitForRun } from "../helpers/runs";
import { useLocalStack } from "../helpers/stack";
import { snapshotTable } from "../helpers/table";

const stack = useLocalStack();

interface Listed {
  runId: string;
  workflow: string;
  status: string;
  createdAt: string;
  errorCode?: string;
}

/** Every page of GET /runs with `query`, following nextCursor. */
async function listAll(query: Record<string, string>): Promise<Listed[]> {
  const runs: Listed[] = [];
  let cursor: string | undefined;
  do {
    const params = new URLSearchParams({ ...query, ...(cursor ? { cursor } : {}) });
    const { status, body } = await stack.api("GET", `/runs?${params}`);
    expect(status).toBe(200);
    runs.push(...body.runs);
    cursor = body.nextCursor;
  } while (cursor);
  return runs;
}

describe("listing", () => {
  /** runId → what it is, in order of creation. */
  const created: { runId: string; workflow: string; status: string }[] = [];

  beforeAll(async () => {
    await register(stack, { name: "list-ok", tasks: { a: { action: "core.noop" } } });
    await register(stack, {
      name: "list-bad",
      tasks: { a: { action: "core.fail", input: { message: "no" } } },
    });
    // a second version of list-ok
    await register(stack, { name: "list-ok", description: "v2", tasks: { a: { action: "core.noop" } } });
    for (let i = 0; i < 14; i++) {
      const workflow = i % 3 === 0 ? "list-bad" : "list-ok";
      const start = i % 5 !== 4; // every fifth run is created without starting: pending
      const { runId } = await stack.client.createRun(workflow, { input: { i }, start });
      created.push({
        runId,
        workflow,
        status: start ? (workflow === "list-bad" ? "failed" : "succeeded") : "pending",
      });
    }
    for (const run of created) if (run.status !== "pending") await waitForRun(stack, run.runId);
  });

  it("lists workflows by name with their latest version, and a workflow's versions newest first", async () => {
    const { status, body } = await stack.api("GET", "/workflows");
    expect(status).toBe(200);
    expect(body.workflows).toEqual([
      { name: "list-bad", version: 1, createdAt: expect.any(String) },
      { name: "list-ok", version: 2, createdAt: expect.any(String) },
    ]);
    const versions = await stack.api("GET", "/workflows/list-ok/versions");
    expect(versions.status).toBe(200);
    expect(versions.body.versions.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    const missing = await stack.api("GET", "/workflows/nope/versions");
    expect(missing).toMatchObject({ status: 404, body: { error: { code: "WorkflowNotFound" } } });
  });

  it("pages through every run once, newest first, each with its current status", async () => {
    const listed = await listAll({ limit: "4" });
    expect(listed.map((r) => r.runId)).toEqual(created.map((r) => r.runId).reverse());
    expect(listed.map((r) => r.status)).toEqual(created.map((r) => r.status).reverse());
    expect(listed.filter((r) => r.status === "failed").every((r) => r.errorCode)).toBe(true);
    const times = listed.map((r) => r.createdAt);
    expect([...times].sort().reverse()).toEqual(times);
  });

  it("filters by workflow, by status, and by both", async () => {
    const ids = (runs: { runId: string }[]) => runs.map((r) => r.runId);
    const expected = (keep: (r: (typeof created)[number]) => boolean) => ids(created.filter(keep)).reverse();
    expect(ids(await listAll({ workflow: "list-bad", limit: "2" }))).toEqual(
      expected((r) => r.workflow === "list-bad"),
    );
    expect(ids(await listAll({ status: "pending", limit: "1" }))).toEqual(
      expected((r) => r.status === "pending"),
    );
    expect(ids(await listAll({ workflow: "list-ok", status: "succeeded" }))).toEqual(
      expected((r) => r.workflow === "list-ok" && r.status === "succeeded"),
    );
    expect(await listAll({ workflow: "nobody" })).toEqual([]);
  });

  it("answers a bad query with 400 InvalidQuery naming each bad parameter, and writes nothing", async () => {
    const before = await snapshotTable();
    const bad = await stack.api("GET", "/runs?limit=500&status=done&colour=red");
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("InvalidQuery");
    expect(bad.body.error.details.map((d: { path: string }) => d.path).sort()).toEqual([
      "colour",
      "limit",
      "status",
    ]);
    expect(bad.text).not.toMatch(/at .*\.ts/); // no stack trace
    const cursor = await stack.api("GET", "/runs?cursor=xyz");
    expect(cursor).toMatchObject({ status: 400, body: { error: { code: "InvalidQuery" } } });
    expect(await snapshotTable()).toEqual(before);
  });
});
