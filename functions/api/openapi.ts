/**
 * The HTTP API as an OpenAPI 3.1 document, served at `GET /openapi.json` and checked against the
 * live API by test/integration/openapi.test.ts (every route, every status it lists). Routes are
 * the ones in routes.ts; error codes the ones errors.ts maps to status codes.
 */
import { withoutProblemMessages } from "../../lib/definition/json-schema";
import { CALLBACK_BODY_SCHEMA } from "../../lib/engine/callback-body";
import { RUN_STATUSES } from "../../lib/store/run-state";
import { STATUS_BY_CODE } from "./errors";

const json = (schema: unknown) => ({ "application/json": { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const ok = (description: string, schema: unknown) => ({ description, content: json(schema) });

/** The error codes answered with `status`, from errors.ts (plus 500's InternalError). */
const codesFor = (status: number) =>
  status === 500
    ? ["InternalError"]
    : Object.entries(STATUS_BY_CODE)
        .filter(([, s]) => s === status)
        .map(([code]) => code);

/** An error answer with `status`; `codes` narrows the codes this route answers with it. */
const error = (status: number, description: string, codes = codesFor(status)) => ({
  description: `${description} (${codes.join(", ")})`,
  content: json({
    type: "object",
    required: ["error"],
    properties: {
      error: {
        allOf: [ref("Error")],
        properties: { code: { enum: codes } },
      },
    },
  }),
});

const nameParam = {
  name: "name",
  in: "path",
  required: true,
  description: "A workflow name.",
  schema: { type: "string", pattern: "^[A-Za-z0-9_-]{1,64}$" },
};
const runIdParam = {
  name: "runId",
  in: "path",
  required: true,
  description: "A run id.",
  schema: { type: "string" },
};
const tokenParam = {
  name: "token",
  in: "path",
  required: true,
  description: "The callback token a `core.callback` task issued.",
  schema: { type: "string" },
};
const notFoundRun = error(404, "no such run", ["RunNotFound"]);
const badJson = error(400, "the body is not valid JSON, or not a valid request", [
  "MalformedBody",
  "InvalidRequest",
]);

export const openApiDocument = {
  openapi: "3.1.0",
  info: {
    title: "onceflow",
    version: "0.1.0",
    description:
      "A serverless workflow executor where every step happens exactly once in effect. Errors are " +
      '`{"error": {"code", "message", "details"?}}`; bad input changes nothing. Creating, ' +
      "cancelling and redriving runs and the callback routes may answer 503 `Contention`, with " +
      "`Retry-After` (seconds), when other writers kept moving what they write on every try: the same " +
      "request may succeed then. Like 500 `InternalError`, it is listed under no route: no request " +
      "provokes it on its own.",
  },
  paths: {
    "/health": {
      get: {
        summary: "Liveness",
        responses: { 200: ok("alive", { type: "object", properties: { status: { const: "ok" } } }) },
      },
    },
    "/openapi.json": {
      get: { summary: "This document", responses: { 200: ok("the OpenAPI document", { type: "object" }) } },
    },
    "/schema/workflow.json": {
      get: {
        summary: "The JSON Schema of a workflow definition (schema/workflow.schema.json)",
        responses: {
          200: {
            description: "the schema (draft-07), for editors and other tools",
            content: {
              "application/schema+json": { schema: { type: "object", required: ["$schema", "$id"] } },
            },
          },
        },
      },
    },
    "/workflows": {
      get: {
        summary: "Every workflow, by name, with its latest version",
        responses: {
          200: ok("the workflows", {
            type: "object",
            required: ["workflows"],
            properties: { workflows: { type: "array", items: ref("WorkflowSummary") } },
          }),
        },
      },
    },
    "/workflows/{name}": {
      parameters: [nameParam],
      put: {
        summary: "Register a definition as the workflow's next version",
        requestBody: {
          required: true,
          description: "The definition (schema/workflow.schema.json), as JSON or YAML.",
          content: {
            "application/json": { schema: { type: "object" } },
            "application/yaml": { schema: { type: "string" } },
          },
        },
        responses: {
          200: ok("the same definition as the latest: its version", ref("Registration")),
          201: ok("registered as a new version", ref("Registration")),
          400: error(400, "not a valid definition", ["MalformedBody", "InvalidWorkflow"]),
        },
      },
      get: {
        summary: "The latest definition",
        responses: {
          200: ok("the latest version", ref("WorkflowVersion")),
          404: error(404, "no such workflow", ["WorkflowNotFound"]),
        },
      },
    },
    "/workflows/{name}/versions": {
      parameters: [nameParam],
      get: {
        summary: "Every version of a workflow, newest first",
        responses: {
          200: ok("the versions", {
            type: "object",
            required: ["name", "versions"],
            properties: {
              name: { type: "string" },
              versions: {
                type: "array",
                items: {
                  type: "object",
                  required: ["version", "createdAt", "hash"],
                  properties: {
                    version: { type: "integer", minimum: 1 },
                    createdAt: { type: "string", format: "date-time" },
                    hash: { type: "string" },
                  },
                },
              },
            },
          }),
          404: error(404, "no such workflow", ["WorkflowNotFound"]),
        },
      },
    },
    "/workflows/{name}/versions/{version}": {
      parameters: [
        nameParam,
        {
          name: "version",
          in: "path",
          required: true,
          description: "A version number (1 is the first).",
          schema: { type: "integer", minimum: 1 },
        },
      ],
      get: {
        summary: "One version of a workflow, with its definition (the one a run of it follows)",
        responses: {
          200: ok("the version", ref("WorkflowVersion")),
          400: error(400, "the version is not a whole number from 1", ["InvalidRequest"]),
          404: error(404, "no such workflow or version", ["WorkflowNotFound"]),
        },
      },
    },
    "/workflows/{name}/runs": {
      parameters: [nameParam],
      post: {
        summary: "Create a run of the latest version (and start it, unless `start` is false)",
        parameters: [
          {
            name: "Idempotency-Key",
            in: "header",
            description: "The same key (and input) again answers 200 with the same run, for 7 days.",
            schema: { type: "string", pattern: "^[\\x21-\\x7e]{1,255}$" },
          },
        ],
        requestBody: {
          content: json({
            type: "object",
            additionalProperties: false,
            properties: {
              input: { description: "The run's input (checked against the workflow's `input` schema)." },
              start: { type: "boolean", default: true },
            },
          }),
        },
        responses: {
          200: ok("the run this Idempotency-Key created", ref("RunCreated")),
          201: ok("created", ref("RunCreated")),
          400: error(400, "a bad request or input", [
            "MalformedBody",
            "InvalidRequest",
            "InvalidInput",
            "InputTooLarge",
          ]),
          404: error(404, "no such workflow", ["WorkflowNotFound"]),
          409: error(409, "the key was used with another input, or the concurrency key is held", [
            "IdempotencyKeyReused",
            "ConcurrencyKeyBusy",
          ]),
        },
      },
    },
    "/runs": {
      get: {
        summary: "Runs, newest first; only a missing nextCursor means the last page",
        parameters: [
          {
            name: "workflow",
            in: "query",
            schema: { type: "string" },
            description: "Only this workflow's runs.",
          },
          {
            name: "status",
            in: "query",
            schema: { enum: RUN_STATUSES },
            description: "Only runs with this status.",
          },
          { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 100, default: 20 } },
          {
            name: "cursor",
            in: "query",
            schema: { type: "string" },
            description: "A page's nextCursor, with the same filters.",
          },
        ],
        responses: {
          200: ok("a page of runs", {
            type: "object",
            required: ["runs"],
            properties: { runs: { type: "array", items: ref("RunSummary") }, nextCursor: { type: "string" } },
          }),
          400: error(400, "an unknown parameter or a bad value", ["InvalidQuery"]),
        },
      },
    },
    "/runs/{runId}": {
      parameters: [runIdParam],
      get: {
        summary: "A run, with each task's progress",
        responses: { 200: ok("the run", ref("Run")), 404: notFoundRun },
      },
    },
    "/runs/{runId}/events": {
      parameters: [runIdParam],
      get: {
        summary: "A run's history, in order",
        responses: {
          200: ok("the events", {
            type: "object",
            required: ["events"],
            properties: { events: { type: "array", items: ref("RunEvent") } },
          }),
          404: notFoundRun,
        },
      },
    },
    "/runs/{runId}/tasks/{task}": {
      parameters: [
        runIdParam,
        {
          name: "task",
          in: "path",
          required: true,
          description: "A task's name.",
          schema: { type: "string" },
        },
        {
          name: "item",
          in: "query",
          description: "An item's index (from 0), for one item of a with-items task.",
          schema: { type: "integer", minimum: 0 },
        },
      ],
      get: {
        summary: "One task of a run (or one item): its attempts, input, output and error",
        responses: {
          200: ok(
            "a plain task or an item (`action`, `input`...), or a with-items task's counters (`items`)",
            {
              type: "object",
              required: ["runId", "task", "status", "error", "createdAt", "startedAt", "endedAt"],
              properties: {
                runId: { type: "string" },
                task: { type: "string" },
                item: { type: "integer", minimum: 0 },
                status: { type: "string" },
                action: { type: "string" },
                attempts: { type: "integer", minimum: 0 },
                input: {},
                output: {},
                error: {},
                items: { type: "object" },
                createdAt: { type: "string", format: "date-time" },
                startedAt: { type: ["string", "null"], format: "date-time" },
                endedAt: { type: ["string", "null"], format: "date-time" },
                waitingFor: { type: "object" },
              },
            },
          ),
          400: error(400, "an unknown parameter or a bad item", ["InvalidQuery"]),
          404: error(404, "no such run, task or item", ["RunNotFound", "TaskNotFound"]),
        },
      },
    },
    "/runs/{runId}/trigger": {
      parameters: [runIdParam],
      post: {
        summary: "Start a run created with `start: false`; only the first trigger wins",
        responses: {
          202: ok("started", ref("RunCreated")),
          404: notFoundRun,
          409: error(409, "already started, or its concurrency key is held", [
            "RunAlreadyStarted",
            "ConcurrencyKeyBusy",
          ]),
        },
      },
    },
    "/runs/{runId}/cancel": {
      parameters: [runIdParam],
      post: {
        summary: "Cancel a run: no action is invoked after it",
        responses: {
          202: ok("cancelled", ref("RunCreated")),
          404: notFoundRun,
          409: error(409, "the run had ended", ["RunAlreadyEnded"]),
        },
      },
    },
    "/runs/{runId}/redrive": {
      parameters: [runIdParam],
      post: {
        summary: "Restart a failed run from what failed",
        responses: {
          202: ok("running again", {
            allOf: [ref("RunCreated")],
            properties: { redriveCount: { type: "integer", minimum: 1 } },
          }),
          404: notFoundRun,
          409: error(409, "only a failed run can be redriven", ["RunNotRedrivable", "ConcurrencyKeyBusy"]),
        },
      },
    },
    "/callbacks/{token}": {
      parameters: [tokenParam],
      post: {
        summary: "Complete a waiting callback task",
        requestBody: {
          content: json({
            description: "`{output}` to succeed, or `{error: {code?, message}}` to fail (without retry).",
            ...(withoutProblemMessages(CALLBACK_BODY_SCHEMA) as object),
          }),
        },
        responses: {
          200: ok("completed (changed: false when this body had completed it already)", {
            type: "object",
            required: ["runId", "task", "status", "changed"],
            properties: {
              runId: { type: "string" },
              task: { type: "string" },
              item: { type: "integer" },
              status: { type: "string" },
              changed: { type: "boolean" },
            },
          }),
          400: badJson,
          404: error(404, "no task waits for this token", ["CallbackNotFound"]),
          409: error(409, "completed already, by another body", ["CallbackAlreadyCompleted"]),
        },
      },
    },
    "/callbacks/{token}/heartbeat": {
      parameters: [tokenParam],
      post: {
        summary: "Keep a waiting callback task alive",
        responses: {
          200: ok("alive until", {
            type: "object",
            required: ["heartbeatUntil"],
            properties: { heartbeatUntil: { type: "string", format: "date-time" } },
          }),
          404: error(404, "no task waits for this token", ["CallbackNotFound"]),
        },
      },
    },
  },
  components: {
    schemas: {
      WorkflowVersion: {
        type: "object",
        required: ["name", "version", "createdAt", "definition"],
        properties: {
          name: { type: "string" },
          version: { type: "integer", minimum: 1 },
          createdAt: { type: "string", format: "date-time" },
          definition: { type: "object" },
        },
      },
      Error: {
        type: "object",
        required: ["code", "message"],
        properties: {
          code: { type: "string", description: "Stable; what a client branches on." },
          message: { type: "string" },
          details: { type: "array", description: "Every problem, e.g. `{path, message}`." },
        },
        description: "409 answers carry more fields next to code and message (runId, status, ...).",
      },
      Registration: {
        type: "object",
        required: ["name", "version"],
        properties: { name: { type: "string" }, version: { type: "integer", minimum: 1 } },
      },
      WorkflowSummary: {
        type: "object",
        required: ["name", "version"],
        properties: {
          name: { type: "string" },
          version: { type: "integer", minimum: 1, description: "The latest version." },
          createdAt: {
            type: "string",
            format: "date-time",
            description: "When the latest version was registered.",
          },
        },
      },
      RunCreated: {
        type: "object",
        required: ["runId", "status"],
        properties: { runId: { type: "string" }, status: { enum: RUN_STATUSES } },
      },
      RunSummary: {
        type: "object",
        required: ["runId", "workflow", "version", "status", "createdAt"],
        properties: {
          runId: { type: "string" },
          workflow: { type: "string" },
          version: { type: "integer" },
          status: { enum: RUN_STATUSES },
          createdAt: { type: "string", format: "date-time" },
          startedAt: { type: "string", format: "date-time" },
          endedAt: { type: "string", format: "date-time" },
          errorCode: { type: "string", description: "The code of the run's error, when it failed." },
        },
      },
      Run: {
        type: "object",
        required: ["runId", "workflow", "version", "status", "tasks", "createdAt", "startedAt", "endedAt"],
        properties: {
          runId: { type: "string" },
          workflow: { type: "string" },
          version: { type: "integer" },
          status: { enum: RUN_STATUSES },
          input: {},
          output: {},
          error: {},
          tasks: { type: "object", additionalProperties: ref("TaskProgress") },
          createdAt: { type: "string", format: "date-time" },
          startedAt: { type: ["string", "null"], format: "date-time" },
          endedAt: { type: ["string", "null"], format: "date-time" },
          redriveCount: { type: "integer" },
          concurrencyKey: { type: "string" },
          waitingFor: {
            type: "object",
            description:
              "Why a waiting run waits: the run holding its concurrency key, and its place in the queue.",
            properties: {
              concurrencyKey: { type: "string" },
              holder: { type: ["string", "null"] },
              position: { type: "integer" },
            },
          },
        },
      },
      TaskProgress: {
        type: "object",
        required: ["status"],
        properties: {
          status: { enum: ["pending", "queued", "running", "waiting", "succeeded", "failed", "cancelled"] },
          attempts: { type: "integer" },
          error: {},
          items: {
            type: "object",
            description: "A with-items task's progress, from its counters.",
            required: ["total", "queued", "running", "succeeded", "failed"],
            properties: {
              total: { type: "integer" },
              queued: { type: "integer" },
              running: { type: "integer" },
              succeeded: { type: "integer" },
              failed: { type: "integer" },
              cancelled: { type: "integer" },
            },
          },
          waitingFor: { type: "object", description: "A concurrency limit's slot, or a callback." },
        },
      },
      RunEvent: {
        type: "object",
        required: ["seq", "at", "type"],
        properties: {
          seq: { type: "integer", minimum: 1 },
          at: { type: "string", format: "date-time" },
          type: { type: "string" },
          task: { type: "string" },
          item: { type: "integer" },
          attempt: { type: "integer" },
          detail: { type: "object" },
        },
      },
    },
  },
} as const;
