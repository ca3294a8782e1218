/**
 * Reads serverless.yml, the one source of truth for onceflow's resources, and resolves the
 * Serverless Framework variables it uses (`${opt:...}`, `${sls:stage}`, `${self:...}`,
 * `${env:...}`, `${aws:region}`, fallbacks and nesting), the way `serverless package` would.
 * CloudFormation intrinsics (`Ref`, `Fn::GetAtt`) are left as they are: they only get a value once
 * the resources exist (see resources.ts).
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

export interface ServerlessOptions {
  /** `--stage`; when absent `provider.stage` (itself usually `${opt:stage, 'dev'}`) decides. */
  stage?: string;
  /** `--region`. */
  region?: string;
  /** Where `${env:...}` reads from; defaults to `process.env`. */
  env?: Record<string, string | undefined>;
}

/** A CloudFormation resource as written under `resources.Resources`. */
export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  DependsOn?: string | string[];
}

export interface HttpApiEvent {
  kind: "httpApi";
  /** `"$default"` for the catch-all `*`, otherwise `"METHOD /path"` (`ANY` for any method). */
  routeKey: string;
}

export interface SqsEventSource {
  kind: "sqs";
  /** A queue ARN, or an intrinsic (`{"Fn::GetAtt": [Queue, Arn]}`) resolved once queues exist. */
  arn: unknown;
  batchSize: number;
  functionResponseType?: "ReportBatchItemFailures";
  maximumBatchingWindow?: number;
  /** Lambda's cap on concurrent invocations for this event source (the local stack's poller count). */
  maximumConcurrency?: number;
  enabled: boolean;
}

export interface ScheduleEvent {
  kind: "schedule";
  /** `rate(...)` or `cron(...)` expressions. */
  expressions: string[];
  enabled: boolean;
  input?: unknown;
}

export interface OtherEvent {
  kind: "other";
  type: string;
  config: unknown;
}

export type FunctionEvent = HttpApiEvent | SqsEventSource | ScheduleEvent | OtherEvent;

export interface FunctionConfig {
  /** The key under `functions:`. */
  name: string;
  /** `path/to/module.exportName`. */
  handler: string;
  /** Seconds (the Serverless default is 6). */
  timeout: number;
  memorySize: number;
  environment: Record<string, unknown>;
  events: FunctionEvent[];
  /** The logical id of its IAM role under `resources.Resources`, if it names one. */
  role?: string;
}

export interface ProviderConfig {
  name: string;
  runtime?: string;
  stage: string;
  region: string;
  memorySize?: number;
  timeout?: number;
  /** Values may be CloudFormation intrinsics; see `resolveEnvironment` in resources.ts. */
  environment: Record<string, unknown>;
}

export interface ServerlessConfig {
  service: string;
  /** The resolved stage (`${sls:stage}`). */
  stage: string;
  region: string;
  provider: ProviderConfig;
  functions: Record<string, FunctionConfig>;
  resources: { Resources: Record<string, CfnResource> };
}

/** serverless.yml at the root of the repository. */
export const defaultServerlessPath = fileURLToPath(new URL("../../serverless.yml", import.meta.url));

/** Loads and resolves a serverless.yml file. */
export function loadServerlessConfig(options: ServerlessOptions & { path?: string } = {}): ServerlessConfig {
  const path = options.path ?? defaultServerlessPath;
  const text = readFileSync(path, "utf8");
  try {
    return parseServerlessConfig(text, options);
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** Parses and resolves the text of a serverless.yml. */
export function parseServerlessConfig(text: string, options: ServerlessOptions = {}): ServerlessConfig {
  const raw: unknown = parse(text);
  if (!isRecord(raw)) throw new Error("serverless.yml must be a mapping");
  const resolved = resolveVariables(raw, options);
  return toServerlessConfig(resolved);
}

/**
 * Resolves every Serverless variable in a parsed serverless.yml and returns the resolved document.
 * Exported for tests and tools that need parts of the file this module does not type.
 */
export function resolveVariables(raw: Record<string, unknown>, options: ServerlessOptions = {}) {
  return new VariableResolver(raw, options).resolveDocument();
}

class VariableResolver {
  private readonly env: Record<string, string | undefined>;
  private readonly resolving: string[] = [];
  private readonly instanceId = randomBytes(4).readUInt32BE(0).toString();

  constructor(
    private readonly raw: Record<string, unknown>,
    private readonly options: ServerlessOptions,
  ) {
    this.env = options.env ?? process.env;
  }

  resolveDocument(): Record<string, unknown> {
    return this.resolveDeep(this.raw, "") as Record<string, unknown>;
  }

  private resolveDeep(node: unknown, path: string): unknown {
    if (typeof node === "string") return this.resolveString(node, path);
    if (Array.isArray(node)) return node.map((item, index) => this.resolveDeep(item, `${path}[${index}]`));
    if (isRecord(node)) {
      const out: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(node)) {
        out[key] = this.resolveDeep(value, path === "" ? key : `${path}.${key}`);
      }
      return out;
    }
    return node;
  }

  /** Replaces every `${...}` in a string; a string that is exactly one variable keeps its type. */
  private resolveString(text: string, path: string): unknown {
    const spans = findVariables(text);
    if (spans.length === 0) return text;
    const [first] = spans;
    if (spans.length === 1 && first && first.start === 0 && first.end === text.length) {
      return this.resolveExpression(first.inner, path);
    }
    let out = "";
    let cursor = 0;
    for (const span of spans) {
      out += text.slice(cursor, span.start);
      const value = this.resolveExpression(span.inner, path);
      if (value !== null && typeof value === "object") {
        throw new Error(`at "${path}": \${${span.inner}} is an object and cannot be part of a string`);
      }
      out += value === null ? "null" : String(value);
      cursor = span.end;
    }
    return out + text.slice(cursor);
  }

  /** `source:address, fallback, ...`: the first part that yields a value wins. */
  private resolveExpression(inner: string, path: string): unknown {
    for (const part of splitTopLevel(inner, ",")) {
      const value = this.resolvePart(part.trim(), path);
      if (value !== undefined) return value;
    }
    throw new Error(`cannot resolve variable at "${path}": no value found for \${${inner}}`);
  }

  private resolvePart(part: string, path: string): unknown {
    if (part === "") throw new Error(`at "${path}": empty variable`);
    const quoted = /^'(.*)'$/s.exec(part) ?? /^"(.*)"$/s.exec(part);
    if (quoted) return quoted[1];
    if (/^-?\d+(\.\d+)?$/.test(part)) return Number(part);
    if (part === "true" || part === "false") return part === "true";
    if (part === "null") return null;
    if (part.startsWith("${")) return this.resolveString(part, path);
    const colon = part.indexOf(":");
    if (colon <= 0) throw new Error(`at "${path}": cannot understand variable part "${part}"`);
    const source = part.slice(0, colon);
    const address = this.resolveAddress(part.slice(colon + 1), path);
    switch (source) {
      case "opt":
        return this.option(address);
      case "env":
        return this.env[address];
      case "self":
        return this.self(address, path);
      case "sls":
        return this.sls(address, path);
      case "aws":
        return this.aws(address, path);
      default:
        throw new Error(`at "${path}": variable source "${source}" is not supported by the local stack`);
    }
  }

  /** Addresses may themselves contain variables: `${self:custom.${sls:stage}.name}`. */
  private resolveAddress(address: string, path: string): string {
    const value = this.resolveString(address.trim(), path);
    return String(value);
  }

  private option(name: string): string | undefined {
    if (name === "stage") return this.options.stage;
    if (name === "region") return this.options.region;
    return undefined;
  }

  private self(address: string, path: string): unknown {
    const segments = address === "" ? [] : address.split(".");
    const key = segments.join(".");
    if (this.resolving.includes(key)) {
      throw new Error(`at "${path}": circular reference through \${self:${address}}`);
    }
    this.resolving.push(key);
    try {
      let node: unknown = this.raw;
      const walked: string[] = [];
      for (const segment of segments) {
        // Resolve before descending, so a path can go through a value that is itself a variable.
        if (typeof node === "string") node = this.resolveString(node, walked.join("."));
        if (Array.isArray(node) && /^\d+$/.test(segment)) node = node[Number(segment)];
        else if (isRecord(node)) node = node[segment];
        else return undefined;
        walked.push(segment);
        if (node === undefined) return undefined;
      }
      return this.resolveDeep(node, key);
    } finally {
      this.resolving.pop();
    }
  }

  private sls(address: string, path: string): unknown {
    if (address === "stage") {
      return this.options.stage ?? stringOrUndefined(this.self("provider.stage", path)) ?? "dev";
    }
    if (address === "instanceId") return this.instanceId;
    throw new Error(`at "${path}": \${sls:${address}} is not supported`);
  }

  private aws(address: string, path: string): unknown {
    if (address === "region") {
      return this.options.region ?? stringOrUndefined(this.self("provider.region", path)) ?? "us-east-1";
    }
    if (address === "accountId") return localAccountId;
    if (address === "partition") return "aws";
    throw new Error(`at "${path}": \${aws:${address}} is not supported`);
  }
}

/** The account id the local stack reports everywhere an AWS account id appears. */
export const localAccountId = "000000000000";

interface VariableSpan {
  start: number;
  end: number;
  inner: string;
}

/** Finds the top-level `${...}` spans of a string, honouring nested `${}` and quotes. */
function findVariables(text: string): VariableSpan[] {
  const spans: VariableSpan[] = [];
  let index = 0;
  while (index < text.length) {
    const start = text.indexOf("${", index);
    if (start < 0) break;
    let depth = 0;
    let quote: string | undefined;
    let end = -1;
    for (let i = start; i < text.length; i++) {
      const ch = text[i];
      if (quote) {
        if (ch === quote) quote = undefined;
        continue;
      }
      if ((ch === "'" || ch === '"') && depth > 0) quote = ch;
      else if (ch === "$" && text[i + 1] === "{") {
        depth++;
        i++;
      } else if (ch === "}") {
        depth--;
        if (depth === 0) {
          end = i + 1;
          break;
        }
      }
    }
    if (end < 0) throw new Error(`unterminated variable in "${text}"`);
    spans.push({ start, end, inner: text.slice(start + 2, end - 1) });
    index = end;
  }
  return spans;
}

/** Splits on a separator outside quotes and nested `${}`. */
function splitTopLevel(text: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quote) {
      if (ch === quote) quote = undefined;
      current += ch;
      continue;
    }
    if (ch === "'" || ch === '"') quote = ch;
    else if (ch === "$" && text[i + 1] === "{") depth++;
    else if (ch === "}") depth--;
    else if (ch === separator && depth === 0) {
      parts.push(current);
      current = "";
      continue;
    }
    current += ch;
  }
  parts.push(current);
  return parts;
}

function toServerlessConfig(doc: Record<string, unknown>): ServerlessConfig {
  const service = isRecord(doc.service) ? doc.service.name : doc.service;
  if (typeof service !== "string" || service === "") throw new Error("`service` must be a non-empty string");
  const providerRaw = isRecord(doc.provider) ? doc.provider : {};
  const stage = stringOrUndefined(providerRaw.stage) ?? "dev";
  const region = stringOrUndefined(providerRaw.region) ?? "us-east-1";
  const provider: ProviderConfig = {
    name: stringOrUndefined(providerRaw.name) ?? "aws",
    runtime: stringOrUndefined(providerRaw.runtime),
    stage,
    region,
    memorySize: numberOrUndefined(providerRaw.memorySize),
    timeout: numberOrUndefined(providerRaw.timeout),
    environment: isRecord(providerRaw.environment) ? providerRaw.environment : {},
  };

  const functions: Record<string, FunctionConfig> = {};
  const functionsRaw = isRecord(doc.functions) ? doc.functions : {};
  for (const [name, value] of Object.entries(functionsRaw)) {
    if (!isRecord(value) || typeof value.handler !== "string") {
      throw new Error(`functions.${name}: a function needs a \`handler\``);
    }
    const eventsRaw = Array.isArray(value.events) ? value.events : [];
    functions[name] = {
      name,
      handler: value.handler,
      timeout: numberOrUndefined(value.timeout) ?? provider.timeout ?? 6,
      memorySize: numberOrUndefined(value.memorySize) ?? provider.memorySize ?? 1024,
      environment: isRecord(value.environment) ? value.environment : {},
      events: eventsRaw.map((event, index) => toFunctionEvent(event, `functions.${name}.events[${index}]`)),
      ...(typeof value.role === "string" ? { role: value.role } : {}),
    };
  }

  const resourcesRaw =
    isRecord(doc.resources) && isRecord(doc.resources.Resources) ? doc.resources.Resources : {};
  const resources: Record<string, CfnResource> = {};
  for (const [logicalId, value] of Object.entries(resourcesRaw)) {
    if (!isRecord(value) || typeof value.Type !== "string") {
      throw new Error(`resources.Resources.${logicalId}: a resource needs a \`Type\``);
    }
    resources[logicalId] = {
      Type: value.Type,
      Properties: isRecord(value.Properties) ? value.Properties : undefined,
      DependsOn: value.DependsOn as CfnResource["DependsOn"],
    };
  }
  return { service, stage, region, provider, functions, resources: { Resources: resources } };
}

function toFunctionEvent(event: unknown, path: string): FunctionEvent {
  if (!isRecord(event)) throw new Error(`${path}: an event must be a mapping`);
  const [type, config] = Object.entries(event)[0] ?? [];
  if (type === undefined) throw new Error(`${path}: empty event`);
  switch (type) {
    case "httpApi":
      return { kind: "httpApi", routeKey: httpApiRouteKey(config, path) };
    case "sqs": {
      const sqs = isRecord(config) && "arn" in config ? config : { arn: config };
      const responseType = sqs.functionResponseType;
      if (responseType !== undefined && responseType !== "ReportBatchItemFailures") {
        throw new Error(`${path}: unknown functionResponseType "${String(responseType)}"`);
      }
      return {
        kind: "sqs",
        arn: sqs.arn,
        batchSize: numberOrUndefined(sqs.batchSize) ?? 10,
        functionResponseType: responseType,
        maximumBatchingWindow: numberOrUndefined(sqs.maximumBatchingWindow),
        maximumConcurrency: numberOrUndefined(sqs.maximumConcurrency),
        enabled: sqs.enabled !== false,
      };
    }
    case "schedule": {
      if (typeof config === "string") return { kind: "schedule", expressions: [config], enabled: true };
      if (!isRecord(config)) throw new Error(`${path}: a schedule needs a rate`);
      const rate = config.rate;
      const expressions = Array.isArray(rate) ? rate.map(String) : [String(rate)];
      return { kind: "schedule", expressions, enabled: config.enabled !== false, input: config.input };
    }
    default:
      return { kind: "other", type, config };
  }
}

function httpApiRouteKey(config: unknown, path: string): string {
  let method: string;
  let routePath: string;
  if (typeof config === "string") {
    const text = config.trim();
    if (text === "*") return "$default";
    const match = /^(\S+)\s+(\S+)$/.exec(text);
    if (!match) throw new Error(`${path}: httpApi route "${text}" is not "METHOD /path" or "*"`);
    [, method = "", routePath = ""] = match;
  } else if (isRecord(config) && typeof config.path === "string") {
    method = typeof config.method === "string" ? config.method : "*";
    routePath = config.path;
  } else {
    throw new Error(`${path}: httpApi must be "METHOD /path", "*" or {method, path}`);
  }
  method = method === "*" ? "ANY" : method.toUpperCase();
  if (routePath === "*") return "$default";
  if (!routePath.startsWith("/")) throw new Error(`${path}: httpApi path "${routePath}" must start with /`);
  return `${method} ${routePath}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function numberOrUndefined(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "string" && value.trim() !== "" && !Number.isNaN(Number(value))) return Number(value);
  return undefined;
}
