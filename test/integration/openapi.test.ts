/**
 * The OpenAPI document (`GET /openapi.json`) against the live API on the local stack: every route
 * in it is a route of the API and back, and every status it lists for a route is answered by a
 * real request, with a body that matches the schema it gives.
 */
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";
import { beforeAll, describe, expect, it } from "vitest";
import { routes } from "../../functions/api/routes";
import { WORKFLOW_SCHEMA_FILE } from "../../lib/definition/json-schema";
import { eventsOf, register, waitForRun } from "../helpers/runs";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack();

interface Call {
  /** The documented route, `METHOD /path/{param}`, and the status the request must get. */
  route: string;
  status: number;
  request: () => Promise<{ status: number; body: unknown }>;
}

// biome-ignore lint/suspicious/noExplicitAny: the document is read as plain JSON.
let document: any;
const world = { runId: "", pendingRunId: "", failedRunId: "", token: "" };

const api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  stack.api(method, path, body, headers);

beforeAll(async () => {
  document = (await api("GET", "/openapi.json")).body;
  await register(stack, { name: "oa", tasks: { a: { action: "core.noop" } } });
  await register(stack, { name: "oa-fail", tasks: { a: { action: "core.fail", input: { message: "no" } } } });
  await register(stack, { name: "oa-wait", tasks: { w: { action: "core.callback" } } });
  world.runId = (await api("POST", "/workflows/oa/runs", {}, { "idempotency-key": "k1" })).body.runId;
  world.pendingRunId = (await api("POST", "/workflows/oa/runs", { start: false })).body.runId;
  world.failedRunId = (await api("POST", "/workflows/oa-fail/runs", {})).body.runId;
  const waiting = (await api("POST", "/workflows/oa-wait/runs", {})).body.runId;
  await waitForRun(stack, world.runId);
  await waitForRun(stack, world.failedRunId);
  await waitForRun(stack, waiting, (run) => run.tasks.w?.status === "running");
  for (let i = 0; i < 100 && !world.token; i++) {
    const issued = (await eventsOf(stack, waiting)).find((e) => e.type === "CallbackIssued");
    world.token = (issued?.detail?.token as string | undefined) ?? "";
    if (!world.token) await new Promise((r) => setTimeout(r, 100));
  }
});

const run = (path: string) => path.replace("{runId}", world.runId);
const calls: Call[] = [
  { route: "GET /health", status: 200, request: () => api("GET", "/health") },
  { route: "GET /openapi.json", status: 200, request: () => api("GET", "/openapi.json") },
  { route: "GET /schema/workflow.json", status: 200, request: () => api("GET", "/schema/workflow.json") },
  { route: "GET /workflows", status: 200, request: () => api("GET", "/workflows") },
  {
    route: "PUT /workflows/{name}",
    status: 201,
    request: () => api("PUT", "/workflows/oa-new", { name: "oa-new", tasks: { a: { action: "core.noop" } } }),
  },
  {
    route: "PUT /workflows/{name}",
    status: 200,
    request: () => api("PUT", "/workflows/oa", { name: "oa", tasks: { a: { action: "core.noop" } } }),
  },
  { route: "PUT /workflows/{name}", status: 400, request: () => api("PUT", "/workflows/oa", { name: "oa" }) },
  { route: "GET /workflows/{name}", status: 200, request: () => api("GET", "/workflows/oa") },
  { route: "GET /workflows/{name}", status: 404, request: () => api("GET", "/workflows/none") },
  {
    route: "GET /workflows/{name}/versions",
    status: 200,
    request: () => api("GET", "/workflows/oa/versions"),
  },
  {
    route: "GET /workflows/{name}/versions",
    status: 404,
    request: () => api("GET", "/workflows/none/versions"),
  },
  {
    route: "GET /workflows/{name}/versions/{version}",
    status: 200,
    request: () => api("GET", "/workflows/oa/versions/1"),
  },
  {
    route: "GET /workflows/{name}/versions/{version}",
    status: 400,
    request: () => api("GET", "/workflows/oa/versions/0"),
  },
  {
    route: "GET /workflows/{name}/versions/{version}",
    status: 404,
    request: () => api("GET", "/workflows/oa/versions/99"),
  },
  { route: "POST /workflows/{name}/runs", status: 201, request: () => api("POST", "/workflows/oa/runs", {}) },
  {
    route: "POST /workflows/{name}/runs",
    status: 200,
    request: () => api("POST", "/workflows/oa/runs", {}, { "idempotency-key": "k1" }),
  },
  {
    route: "POST /workflows/{name}/runs",
    status: 400,
    request: () => api("POST", "/workflows/oa/runs", { colour: 1 }),
  },
  {
    route: "POST /workflows/{name}/runs",
    status: 404,
    request: () => api("POST", "/workflows/none/runs", {}),
  },
  {
    route: "POST /workflows/{name}/runs",
    status: 409,
    request: () => api("POST", "/workflows/oa/runs", { input: 2 }, { "idempotency-key": "k1" }),
  },
  { route: "GET /runs", status: 200, request: () => api("GET", "/runs?limit=2") },
  { route: "GET /runs", status: 400, request: () => api("GET", "/runs?limit=0") },
  { route: "GET /runs/{runId}", status: 200, request: () => api("GET", run("/runs/{runId}")) },
  { route: "GET /runs/{runId}", status: 404, request: () => api("GET", "/runs/none") },
  { route: "GET /runs/{runId}/events", status: 200, request: () => api("GET", run("/runs/{runId}/events")) },
  { route: "GET /runs/{runId}/events", status: 404, request: () => api("GET", "/runs/none/events") },
  {
    route: "GET /runs/{runId}/tasks/{task}",
    status: 200,
    request: () => api("GET", run("/runs/{runId}/tasks/a")),
  },
  {
    route: "GET /runs/{runId}/tasks/{task}",
    status: 400,
    request: () => api("GET", run("/runs/{runId}/tasks/a?item=-1")),
  },
  {
    route: "GET /runs/{runId}/tasks/{task}",
    status: 404,
    request: () => api("GET", run("/runs/{runId}/tasks/nowhere")),
  },
  {
    route: "POST /runs/{runId}/trigger",
    status: 202,
    request: () => api("POST", `/runs/${world.pendingRunId}/trigger`),
  },
  { route: "POST /runs/{runId}/trigger", status: 404, request: () => api("POST", "/runs/none/trigger") },
  {
    route: "POST /runs/{runId}/trigger",
    status: 409,
    request: () => api("POST", run("/runs/{runId}/trigger")),
  },
  {
    route: "POST /runs/{runId}/cancel",
    status: 202,
    request: async () => {
      const { runId } = (await api("POST", "/workflows/oa/runs", { start: false })).body;
      return api("POST", `/runs/${runId}/cancel`);
    },
  },
  { route: "POST /runs/{runId}/cancel", status: 404, request: () => api("POST", "/runs/none/cancel") },
  {
    route: "POST /runs/{runId}/cancel",
    status: 409,
    request: () => api("POST", run("/runs/{runId}/cancel")),
  },
  {
    route: "POST /runs/{runId}/redrive",
    status: 202,
    request: () => api("POST", `/runs/${world.failedRunId}/redrive`),
  },
  { route: "POST /runs/{runId}/redrive", status: 404, request: () => api("POST", "/runs/none/redrive") },
  {
    route: "POST /runs/{runId}/redrive",
    status: 409,
    request: () => api("POST", run("/runs/{runId}/redrive")),
  },
  {
    route: "POST /callbacks/{token}/heartbeat",
    status: 200,
    request: () => api("POST", `/callbacks/${encodeURIComponent(world.token)}/heartbeat`),
  },
  {
    route: "POST /callbacks/{token}/heartbeat",
    status: 404,
    request: () => api("POST", "/callbacks/nope/heartbeat"),
  },
  {
    route: "POST /callbacks/{token}",
    status: 400,
    request: () => api("POST", `/callbacks/${encodeURIComponent(world.token)}`, [1]),
  },
  {
    route: "POST /callbacks/{token}",
    status: 200,
    request: () => api("POST", `/callbacks/${encodeURIComponent(world.token)}`, { output: { ok: true } }),
  },
  {
    route: "POST /callbacks/{token}",
    status: 409,
    request: () => api("POST", `/callbacks/${encodeURIComponent(world.token)}`, { output: { ok: false } }),
  },
  {
    route: "POST /callbacks/{token}",
    status: 404,
    request: () => api("POST", "/callbacks/nope", { output: 1 }),
  },
];

/** Every `METHOD /path` the document declares, with the statuses it lists. */
function documented(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, unknown>>)) {
    for (const [method, operation] of Object.entries(item)) {
      if (method === "parameters") continue;
      out.set(`${method.toUpperCase()} ${path}`, Object.keys((operation as { responses: object }).responses));
    }
  }
  return out;
}

describe("the OpenAPI document", () => {
  it("is OpenAPI 3.1 and names exactly the API's routes", () => {
    expect(document.openapi).toBe("3.1.0");
    expect([...documented().keys()].sort()).toEqual(Object.keys(routes).sort());
  });

  it("lists no status that a call below does not make, and no call makes an undocumented one", () => {
    const made = new Set(calls.map((c) => `${c.route} ${c.status}`));
    const listed = [...documented()].flatMap(([route, statuses]) => statuses.map((s) => `${route} ${s}`));
    // 500 is listed nowhere: it is the answer to a bug, never to input; nor is 503 `Contention`
    // (writers racing on one item, which no single request provokes: the document's description
    // says it, and test/unit/functions/api.test.ts checks its answer)
    expect(listed.sort()).toEqual([...made].sort());
  });

  it("describes every answer: each call gets its status, with a body its schema accepts", async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema({ $id: "onceflow", components: document.components }, "onceflow");
    const schemaOf = (route: string, status: number) => {
      const [method, path] = route.split(" ") as [string, string];
      const response = document.paths[path][method.toLowerCase()].responses[status];
      // one media type an answer: application/json, or application/schema+json for the schema
      const [content] = Object.values(response.content) as { schema: unknown }[];
      const schema = content?.schema;
      // the document's refs point into its own components
      return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"onceflow#/components/'));
    };
    // in order: later calls rely on earlier ones (the callback is completed before the 409)
    for (const call of calls) {
      const answer = await call.request();
      expect(answer.status, `${call.route} → ${JSON.stringify(answer.body)}`).toBe(call.status);
      const validate = ajv.compile(schemaOf(call.route, call.status));
      expect(validate(answer.body), `${call.route} ${call.status}: ${ajv.errorsText(validate.errors)}`).toBe(
        true,
      );
    }
  });
});

describe("GET /schema/workflow.json", () => {
  it(`serves ${WORKFLOW_SCHEMA_FILE}, as application/schema+json`, async () => {
    const answer = await api("GET", "/schema/workflow.json");
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toBe("application/schema+json");
    const file = readFileSync(new URL(`../../${WORKFLOW_SCHEMA_FILE}`, import.meta.url), "utf8");
    expect(answer.body).toEqual(JSON.parse(file));
    // the same keys in the same order, not only an equal object
    expect(answer.text).toBe(JSON.stringify(JSON.parse(file)));
  });
});
