import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { workflowJsonSchema } from "../../lib/definition/json-schema";
import { completeCallback, heartbeatCallback } from "../../lib/engine/callback-complete";
import { InvalidRequestError, MalformedBodyError } from "../../lib/errors";
import { listRuns, listWorkflows } from "../../lib/listing";
import { getRunEvents, getRunView, getTaskDetail } from "../../lib/run-view";
import { cancelRun, createRun, redriveRun, triggerRun } from "../../lib/runs";
import { getLatestWorkflow, getWorkflowVersion, listVersions, registerWorkflow } from "../../lib/workflows";
import { consoleRoutes } from "./console";
import { json, MethodNotAllowedError, RouteNotFoundError } from "./errors";
import { openApiDocument } from "./openapi";

export type Route = (
  event: APIGatewayProxyEventV2,
  params: Record<string, string>,
) => Promise<APIGatewayProxyStructuredResultV2>;

function body(event: APIGatewayProxyEventV2): string | undefined {
  if (!event.body) return undefined;
  return event.isBase64Encoded ? Buffer.from(event.body, "base64").toString("utf8") : event.body;
}

function jsonBody(event: APIGatewayProxyEventV2): unknown {
  const text = body(event);
  if (text === undefined || text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new MalformedBodyError(`the body is not valid JSON: ${(error as Error).message}`, error);
  }
}

/** The query string's parameters (API Gateway joins a repeated one with commas). */
const queryOf = (event: APIGatewayProxyEventV2): Record<string, string | undefined> =>
  event.queryStringParameters ?? {};

const header = (event: APIGatewayProxyEventV2, name: string) => event.headers?.[name.toLowerCase()];

/** A version number in a path: 1 or more, digits only. */
function versionOf(text: string | undefined): number {
  if (!text || !/^[1-9]\d{0,8}$/.test(text))
    throw new InvalidRequestError(`the version must be a whole number from 1, not '${text ?? ""}'`);
  return Number(text);
}

/** Route keys exactly as declared in serverless.yml (API Gateway passes them as `routeKey`). */
export const routes: Record<string, Route> = {
  "GET /health": async () => json(200, { status: "ok" }),
  "GET /openapi.json": async () => json(200, openApiDocument),
  "GET /schema/workflow.json": async () =>
    json(200, workflowJsonSchema, { "content-type": "application/schema+json" }),
  "GET /workflows": async () => json(200, { workflows: await listWorkflows() }),
  "PUT /workflows/{name}": async (event, { name }) => {
    const result = await registerWorkflow(name as string, body(event), header(event, "content-type"));
    return json(result.created ? 201 : 200, { name: result.name, version: result.version });
  },
  "GET /workflows/{name}": async (_event, { name }) => {
    const workflow = await getLatestWorkflow(name as string);
    return json(200, {
      name: workflow.name,
      version: workflow.version,
      createdAt: workflow.createdAt,
      definition: workflow.definition,
    });
  },
  "GET /workflows/{name}/versions": async (_event, { name }) =>
    json(200, { name, versions: await listVersions(name as string) }),
  "GET /workflows/{name}/versions/{version}": async (_event, { name, version }) => {
    const workflow = await getWorkflowVersion(name as string, versionOf(version));
    return json(200, {
      name: workflow.name,
      version: workflow.version,
      createdAt: workflow.createdAt,
      definition: workflow.definition,
    });
  },
  "POST /workflows/{name}/runs": async (event, { name }) => {
    const { run, created } = await createRun(
      name as string,
      jsonBody(event),
      header(event, "idempotency-key"),
    );
    return json(created ? 201 : 200, run);
  },
  "GET /runs": async (event) => json(200, await listRuns(queryOf(event))),
  "POST /runs/{runId}/trigger": async (_event, { runId }) => json(202, await triggerRun(runId as string)),
  "POST /runs/{runId}/cancel": async (_event, { runId }) => json(202, await cancelRun(runId as string)),
  "POST /runs/{runId}/redrive": async (_event, { runId }) => json(202, await redriveRun(runId as string)),
  "GET /runs/{runId}": async (_event, { runId }) => json(200, await getRunView(runId as string)),
  "GET /runs/{runId}/events": async (_event, { runId }) => json(200, await getRunEvents(runId as string)),
  "GET /runs/{runId}/tasks/{task}": async (event, { runId, task }) =>
    json(200, await getTaskDetail(runId as string, task as string, queryOf(event))),
  "POST /callbacks/{token}": async (event, { token }) =>
    json(200, await completeCallback(token as string, jsonBody(event))),
  "POST /callbacks/{token}/heartbeat": async (_event, { token }) =>
    json(200, await heartbeatCallback(token as string)),
};

/** The API's routes and the web console's (functions/api/console.ts: not part of the API's document). */
const allRoutes: Record<string, Route> = { ...routes, ...consoleRoutes };

const templates = Object.keys(allRoutes).map((key) => {
  const [method, template] = key.split(" ") as [string, string];
  const names: string[] = [];
  // `{name}` is one segment; a greedy `{name+}` the rest of the path, maybe empty
  const pattern = template.replace(/\{(\w+)(\+?)\}/g, (_, n: string, greedy: string) => {
    names.push(n);
    return greedy ? "(.*)" : "([^/]+)";
  });
  return { key, method, regex: new RegExp(`^${pattern}$`), names };
});

/**
 * Picks the route: API Gateway's `routeKey` when it matched one, otherwise (the `$default` route)
 * matches the path here, so that a wrong method answers 405 and an unknown path 404, both as JSON.
 */
export function resolveRoute(event: APIGatewayProxyEventV2): {
  route: Route;
  params: Record<string, string>;
} {
  const direct = allRoutes[event.routeKey];
  if (direct) return { route: direct, params: (event.pathParameters ?? {}) as Record<string, string> };
  const method = event.requestContext.http.method;
  const path = event.rawPath;
  const matching = templates.filter((t) => t.regex.test(path));
  const found = matching.find((t) => t.method === method);
  if (!found) {
    if (matching.length > 0)
      throw new MethodNotAllowedError(
        method,
        path,
        matching.map((t) => t.method),
      );
    throw new RouteNotFoundError(method, path);
  }
  const values = found.regex.exec(path)?.slice(1) ?? [];
  let params: Record<string, string>;
  try {
    params = Object.fromEntries(found.names.map((n, i) => [n, decodeURIComponent(values[i] ?? "")]));
  } catch {
    // a malformed %-escape names nothing
    throw new RouteNotFoundError(method, path);
  }
  return { route: allRoutes[found.key] as Route, params };
}
