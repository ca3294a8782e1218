/**
 * The local API Gateway HTTP API: a node:http server that routes each request like API Gateway
 * (route keys from serverless.yml's `httpApi` events, `$default` as the fallback), hands the
 * handler a payload format 2.0 event and shapes its result into the HTTP response the way API
 * Gateway does.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import {
  invokeLambda,
  type LambdaFunctionInfo,
  type LambdaHandler,
  LambdaTimeoutError,
} from "./lambda-context";
import { type LocalLog, silentLog } from "./log";
import { localAccountId } from "./serverless-config";

export interface GatewayRoute {
  /** `"$default"` or `"METHOD /path"` with `{param}` and `{proxy+}` segments; METHOD may be ANY. */
  routeKey: string;
  fn: LambdaFunctionInfo;
  handler: LambdaHandler<APIGatewayProxyEventV2, unknown>;
}

export interface HttpGatewayOptions {
  routes: GatewayRoute[];
  /** 0 (the default) for a free port. */
  port?: number;
  host?: string;
  region?: string;
  /** The API id reported in `requestContext.apiId`. */
  apiId?: string;
  log?: LocalLog;
}

export interface HttpGateway {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** Stops accepting requests, waits for those in flight, then closes. */
  close(): Promise<void>;
}

/** API Gateway's payload limit for HTTP APIs. */
const maxBodyBytes = 10 * 1024 * 1024;

interface CompiledRoute extends GatewayRoute {
  method: string;
  segments: string[];
}

export async function startHttpGateway(options: HttpGatewayOptions): Promise<HttpGateway> {
  const log = options.log ?? silentLog;
  const routes = compileRoutes(options.routes);
  const apiId = options.apiId ?? randomApiId();
  const region = options.region ?? "us-east-1";

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error) => {
      log.error("gateway failure", error);
      if (!response.headersSent) send(response, 500, { "content-type": "application/json" }, internalError);
      else response.destroy();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const received = Date.now();
    const requestId = randomRequestId();
    // Path and query exactly as received, as API Gateway passes them.
    const target = request.url ?? "/";
    const question = target.indexOf("?");
    const rawPath = (question < 0 ? target : target.slice(0, question)) || "/";
    const rawQueryString = question < 0 ? "" : target.slice(question + 1);
    const match = matchRoute(routes, request.method ?? "GET", rawPath);
    if (!match) {
      send(response, 404, gatewayHeaders(requestId), JSON.stringify({ message: "Not Found" }));
      return;
    }
    const body = await readBody(request);
    if (body === undefined) {
      send(response, 413, gatewayHeaders(requestId), JSON.stringify({ message: "Request Entity Too Large" }));
      return;
    }
    const event = buildEvent({
      request,
      rawPath,
      rawQueryString,
      body,
      route: match.route,
      pathParameters: match.pathParameters,
      apiId,
      requestId,
      received,
    });
    let result: unknown;
    try {
      result = await invokeLambda(match.route.handler, event, match.route.fn);
    } catch (error) {
      if (error instanceof LambdaTimeoutError) {
        log.error(`${request.method} ${rawPath}: ${error.message}`);
        send(response, 503, gatewayHeaders(requestId), JSON.stringify({ message: "Service Unavailable" }));
      } else {
        log.error(`${request.method} ${rawPath} (${match.route.fn.name}) threw`, error);
        send(response, 500, gatewayHeaders(requestId), internalError);
      }
      return;
    }
    const shaped = shapeResponse(result);
    if (!shaped) {
      log.error(`${request.method} ${rawPath}: ${match.route.fn.name} returned a malformed response`);
      send(response, 500, gatewayHeaders(requestId), internalError);
      return;
    }
    // the function's own content-type stands (shapeResponse gives application/json when it has none)
    const headers = { ...shaped.headers, "apigw-requestid": requestId };
    send(response, shaped.statusCode, headers, shaped.body, shaped.cookies);
    log.debug(`${request.method} ${rawPath} -> ${shaped.statusCode} (${Date.now() - received} ms)`);
  }

  await new Promise<void>((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolveListen();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${options.host ?? "127.0.0.1"}:${port}`;
  log.info(`HTTP API listening on ${url} (${routes.length} routes, region ${region})`);

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    close() {
      closing ??= new Promise<void>((resolveClose, reject) => {
        // In-flight requests get 10 s to finish; then their connections are cut.
        const cut = setTimeout(() => server.closeAllConnections(), 10_000);
        server.close((error) => {
          clearTimeout(cut);
          if (error) reject(error);
          else resolveClose();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

const internalError = JSON.stringify({ message: "Internal Server Error" });

function gatewayHeaders(requestId: string): Record<string, string> {
  return { "content-type": "application/json", "apigw-requestid": requestId };
}

function compileRoutes(routes: GatewayRoute[]): CompiledRoute[] {
  const seen = new Set<string>();
  return routes.map((route) => {
    if (seen.has(route.routeKey)) throw new Error(`route ${route.routeKey} is defined twice`);
    seen.add(route.routeKey);
    if (route.routeKey === "$default") return { ...route, method: "ANY", segments: [] };
    const match = /^([A-Z]+) (\/\S*)$/.exec(route.routeKey);
    if (!match) throw new Error(`invalid route key "${route.routeKey}"`);
    const [, method = "", path = ""] = match;
    return { ...route, method, segments: path.split("/").slice(1) };
  });
}

/** Specificity of one route segment: literal > `{param}` > `{proxy+}`. */
function segmentRank(segment: string): number {
  if (/^\{[^}]+\+\}$/.test(segment)) return 0;
  if (/^\{[^}]+\}$/.test(segment)) return 1;
  return 2;
}

/**
 * Picks the route for a request like API Gateway: the most specific matching path (literal
 * segments before parameters before greedy `{proxy+}`), a method before ANY, `$default` last.
 */
export function matchRoute<T extends { routeKey: string }>(
  routes: T[],
  method: string,
  rawPath: string,
): { route: T; pathParameters?: Record<string, string> } | undefined {
  const requestSegments = rawPath.split("/").slice(1);
  let best: { route: T; pathParameters: Record<string, string>; score: number[] } | undefined;
  for (const route of routes) {
    if (route.routeKey === "$default") continue;
    const space = route.routeKey.indexOf(" ");
    const routeMethod = route.routeKey.slice(0, space);
    if (routeMethod !== "ANY" && routeMethod !== method.toUpperCase()) continue;
    const parameters = matchPath(
      route.routeKey
        .slice(space + 1)
        .split("/")
        .slice(1),
      requestSegments,
    );
    if (!parameters) continue;
    const segments = route.routeKey
      .slice(space + 1)
      .split("/")
      .slice(1);
    const score = [...segments.map(segmentRank), routeMethod === "ANY" ? 0 : 1];
    if (!best || compareScores(score, best.score) > 0) best = { route, pathParameters: parameters, score };
  }
  if (best) {
    return Object.keys(best.pathParameters).length > 0
      ? { route: best.route, pathParameters: best.pathParameters }
      : { route: best.route };
  }
  const fallback = routes.find((route) => route.routeKey === "$default");
  return fallback ? { route: fallback } : undefined;
}

function compareScores(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const difference = (a[i] ?? -1) - (b[i] ?? -1);
    if (difference !== 0) return difference;
  }
  return 0;
}

function matchPath(template: string[], request: string[]): Record<string, string> | undefined {
  const parameters: Record<string, string> = {};
  for (let i = 0; i < template.length; i++) {
    const segment = template[i] as string;
    const greedy = /^\{([^}]+)\+\}$/.exec(segment);
    if (greedy) {
      const rest = request.slice(i);
      if (rest.length === 0 || rest.join("/") === "") return undefined;
      parameters[greedy[1] as string] = safeDecode(rest.join("/"));
      return parameters;
    }
    const value = request[i];
    if (value === undefined) return undefined;
    const parameter = /^\{([^}]+)\}$/.exec(segment);
    if (parameter) {
      if (value === "") return undefined;
      parameters[parameter[1] as string] = safeDecode(value);
    } else if (safeDecode(value) !== segment) return undefined;
  }
  return template.length === request.length ? parameters : undefined;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

async function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBodyBytes) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Content types API Gateway passes to the function as text; everything else is base64. */
export function isTextContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const type = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  return (
    type.startsWith("text/") ||
    type === "application/json" ||
    type === "application/javascript" ||
    type === "application/xml" ||
    type.endsWith("+json") ||
    type.endsWith("+xml")
  );
}

function buildEvent(input: {
  request: IncomingMessage;
  rawPath: string;
  rawQueryString: string;
  body: Buffer;
  route: GatewayRoute;
  pathParameters?: Record<string, string>;
  apiId: string;
  requestId: string;
  received: number;
}): APIGatewayProxyEventV2 {
  const { request } = input;
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    if (name === "cookie") {
      cookies = [
        ...(cookies ?? []),
        ...value
          .split(";")
          .map((cookie) => cookie.trim())
          .filter(Boolean),
      ];
      continue;
    }
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  const sourceIp = (request.socket.remoteAddress ?? "127.0.0.1").replace(/^::ffff:/, "");
  const host = headers.host ?? "localhost";
  headers["x-forwarded-for"] = headers["x-forwarded-for"]
    ? `${headers["x-forwarded-for"]}, ${sourceIp}`
    : sourceIp;
  headers["x-forwarded-port"] = String(request.socket.localPort ?? "");
  headers["x-forwarded-proto"] = "http";
  headers["x-amzn-trace-id"] ??= traceId(input.received);
  if (input.body.length > 0) headers["content-length"] = String(input.body.length);

  const queryStringParameters = parseQuery(input.rawQueryString);
  const domainName = host.split(":")[0] ?? host;
  const event: APIGatewayProxyEventV2 = {
    version: "2.0",
    routeKey: input.route.routeKey,
    rawPath: input.rawPath,
    rawQueryString: input.rawQueryString,
    ...(cookies ? { cookies } : {}),
    headers,
    ...(queryStringParameters ? { queryStringParameters } : {}),
    requestContext: {
      accountId: localAccountId,
      apiId: input.apiId,
      domainName,
      domainPrefix: domainName.split(".")[0] ?? domainName,
      http: {
        method: request.method ?? "GET",
        path: input.rawPath,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp,
        userAgent: headers["user-agent"] ?? "",
      },
      requestId: input.requestId,
      routeKey: input.route.routeKey,
      stage: "$default",
      time: formatRequestTime(input.received),
      timeEpoch: input.received,
    },
    ...(input.pathParameters ? { pathParameters: input.pathParameters } : {}),
    isBase64Encoded: false,
  };
  if (input.body.length > 0) {
    const text = isTextContentType(headers["content-type"]);
    event.body = text ? input.body.toString("utf8") : input.body.toString("base64");
    event.isBase64Encoded = !text;
  }
  return event;
}

/** Duplicate keys are joined with commas, as API Gateway does for payload 2.0. */
function parseQuery(rawQueryString: string): Record<string, string> | undefined {
  if (rawQueryString === "") return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(rawQueryString)) {
    out[key] = key in out ? `${out[key]},${value}` : value;
  }
  return out;
}

interface ShapedResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: Buffer;
  cookies: string[];
}

/**
 * Payload 2.0 response rules: an object with `statusCode` is a structured response; anything else
 * that serializes to JSON is a 200 `application/json` body. Returns undefined for a malformed
 * structured response (API Gateway answers 500 then).
 */
export function shapeResponse(result: unknown): ShapedResponse | undefined {
  const isStructured = typeof result === "object" && result !== null && "statusCode" in result;
  if (!isStructured) {
    const body = typeof result === "string" ? result : (JSON.stringify(result ?? null) ?? "null");
    return {
      statusCode: 200,
      headers: { "content-type": "application/json" },
      body: Buffer.from(body, "utf8"),
      cookies: [],
    };
  }
  const structured = result as APIGatewayProxyStructuredResultV2;
  const statusCode = Number(structured.statusCode);
  if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 599) return undefined;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(structured.headers ?? {}))
    headers[name.toLowerCase()] = String(value);
  headers["content-type"] ??= "application/json";
  if (structured.body !== undefined && typeof structured.body !== "string") return undefined;
  const body = Buffer.from(structured.body ?? "", structured.isBase64Encoded ? "base64" : "utf8");
  return { statusCode, headers, body, cookies: structured.cookies ?? [] };
}

function send(
  response: ServerResponse,
  statusCode: number,
  headers: Record<string, string>,
  body: string | Buffer,
  cookies: string[] = [],
): void {
  const payload = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  response.statusCode = statusCode;
  for (const [name, value] of Object.entries(headers)) {
    if (name !== "content-length" && name !== "transfer-encoding") response.setHeader(name, value);
  }
  if (cookies.length > 0) response.setHeader("set-cookie", cookies);
  response.setHeader("content-length", payload.length);
  response.end(payload);
}

function randomApiId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(randomBytes(10), (byte) => alphabet[byte % alphabet.length]).join("");
}

/** API Gateway request ids look like `JKJaXmPLvHcESHA=`. */
function randomRequestId(): string {
  return randomBytes(10).toString("base64").replace(/[+/]/g, "A").slice(0, 15).concat("=");
}

function traceId(at: number): string {
  return `Root=1-${Math.floor(at / 1000).toString(16)}-${randomBytes(12).toString("hex")}`;
}

const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `12/Mar/2020:19:03:58 +0000`, as in `requestContext.time`. */
export function formatRequestTime(at: number): string {
  const date = new Date(at);
  const pad = (value: number) => String(value).padStart(2, "0");
  return (
    `${pad(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`
  );
}
