/**
 * Validates a workflow definition and returns it normalized, or throws `InvalidWorkflowError`
 * listing every problem at once, each with its path (`tasks.prepare.next[0].do[1]`). The shape is
 * checked by the JSON Schema of schema.ts; what a schema cannot say is checked here.
 */
import Ajv from "ajv";
import { InvalidWorkflowError, type Problem } from "../errors";
import { checkTemplate, isExpression } from "../expression";
import { CALLBACK_ACTION, DEFAULT_CALLBACK_TIMEOUT_SECONDS, MAX_CALLBACK_TIMEOUT_SECONDS } from "./callback";
import { findCycles } from "./graph";
import { checkInputSchema } from "./input-schema";
import { joinPath } from "./problem-path";
import {
  DEFAULT_RETRY_BACKOFF_RATE,
  DEFAULT_RETRY_INTERVAL_SECONDS,
  MAX_TASK_TIMEOUT_SECONDS,
  workflowDefinitionSchema,
} from "./schema";
import { MESSAGES_KEYWORD, schemaProblems } from "./schema-problems";
import type { RetryPolicy, TaskDefinition, Transition, When, WorkflowDefinition } from "./types";

export interface ValidationOptions {
  /** The names of the actions tasks may use. */
  actions: ReadonlySet<string>;
}

// `verbose` gives each error its schema: its own messages, and the allowed keys for an unknown one.
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
ajv.addKeyword({ keyword: MESSAGES_KEYWORD, schemaType: "object" });
const checkShape = ajv.compile(workflowDefinitionSchema);

export function validateDefinition(raw: unknown, options: ValidationOptions): WorkflowDefinition {
  const problems = definitionProblems(raw, options);
  if (problems.length > 0) throw new InvalidWorkflowError(problems);
  return normalize(raw as RawDefinition);
}

/** Every problem of a definition; empty when it is valid. */
export function definitionProblems(raw: unknown, options: ValidationOptions): Problem[] {
  const shape = checkShape(raw) ? [] : schemaProblems(checkShape.errors, raw);
  if (!isRecord(raw)) return shape;
  const problems = [...shape, ...semanticProblems(raw, options)];
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const key = `${problem.path}\n${problem.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Checks that need more than the shape. They run on whatever parts are well-formed, so that a
 * definition with a wrong type somewhere still has its other problems reported.
 */
function semanticProblems(raw: Record<string, unknown>, options: ValidationOptions): Problem[] {
  const problems: Problem[] = [];
  const tasks = isRecord(raw.tasks) ? raw.tasks : {};
  const names = new Set(Object.keys(tasks));
  const graph: Record<string, { next: { do: string[] }[] }> = Object.create(null);
  /** Where each edge is first written, to name the edge that closes a cycle. */
  const edgePaths = new Map<string, string>();
  const targeted = new Set<string>();

  for (const [name, task] of Object.entries(tasks)) {
    const path = joinPath("tasks", name);
    if (name in Object.prototype) {
      problems.push({ path, message: "is a reserved name (a property of JavaScript objects)" });
    }
    const targets: string[] = [];
    graph[name] = { next: [{ do: targets }] };
    if (!isRecord(task)) continue;

    if (typeof task.action === "string" && task.action !== "" && !options.actions.has(task.action)) {
      const known = [...options.actions].sort().join(", ");
      problems.push({
        path: joinPath(path, "action"),
        message: `unknown action "${task.action}" (known: ${known})`,
      });
    }
    if ("input" in task) problems.push(...checkTemplate(task.input, joinPath(path, "input")));
    problems.push(...withItemsProblems(task.withItems, joinPath(path, "withItems")));
    problems.push(...retryProblems(task.retry, joinPath(path, "retry")));
    problems.push(...timeoutProblems(task, path));

    const next = Array.isArray(task.next) ? task.next : [];
    next.forEach((transition: unknown, index) => {
      if (!isRecord(transition)) return;
      for (const target of transitionTargets(
        transition.do,
        joinPath(joinPath(joinPath(path, "next"), index), "do"),
      )) {
        if (!names.has(target.name)) {
          problems.push({ path: target.path, message: `unknown task "${target.name}"` });
          continue;
        }
        targets.push(target.name);
        targeted.add(target.name);
        const edge = `${name}\n${target.name}`;
        if (!edgePaths.has(edge)) edgePaths.set(edge, target.path);
      }
    });
  }

  for (const cycle of findCycles(graph)) {
    const from = cycle.at(-2) ?? "";
    const to = cycle.at(-1) ?? "";
    const path = edgePaths.get(`${from}\n${to}`) ?? joinPath("tasks", from);
    problems.push(
      cycle.length === 2
        ? { path, message: `task "${to}" points at itself (cycle: ${to} -> ${to})` }
        : { path, message: `cycle: ${cycle.join(" -> ")}` },
    );
  }
  if (names.size > 0 && [...names].every((name) => targeted.has(name))) {
    problems.push({
      path: "tasks",
      message: "has no start task: every task is the target of a next transition",
    });
  }

  if (typeof raw.concurrencyKey === "string")
    problems.push(...checkTemplate(raw.concurrencyKey, "concurrencyKey"));
  problems.push(...limitProblems(raw.limits, options));
  if ("output" in raw) problems.push(...checkTemplate(raw.output, "output"));
  if (isRecord(raw.input)) problems.push(...checkInputSchema(raw.input, "input"));
  return problems;
}

function transitionTargets(targets: unknown, path: string): { name: string; path: string }[] {
  if (typeof targets === "string") return [{ name: targets, path }];
  if (!Array.isArray(targets)) return [];
  return targets.flatMap((name: unknown, index) =>
    typeof name === "string" ? [{ name, path: joinPath(path, index) }] : [],
  );
}

function withItemsProblems(withItems: unknown, path: string): Problem[] {
  if (typeof withItems === "string" && !isExpression(withItems)) {
    const problems = checkTemplate(withItems, path);
    return problems.length > 0 ? problems : [{ path, message: "must be a {% %} expression or an array" }];
  }
  return typeof withItems === "string" || Array.isArray(withItems) ? checkTemplate(withItems, path) : [];
}

function limitProblems(limits: unknown, options: ValidationOptions): Problem[] {
  if (!isRecord(limits) || !isRecord(limits.actions)) return [];
  return Object.keys(limits.actions)
    .filter((action) => !options.actions.has(action))
    .map((action) => ({
      path: joinPath(joinPath("limits", "actions"), action),
      message: `unknown action "${action}"`,
    }));
}

function retryProblems(retry: unknown, path: string): Problem[] {
  if (!isRecord(retry) || typeof retry.maxIntervalSeconds !== "number") return [];
  const interval =
    typeof retry.intervalSeconds === "number" ? retry.intervalSeconds : DEFAULT_RETRY_INTERVAL_SECONDS;
  return retry.maxIntervalSeconds < interval
    ? [{ path: joinPath(path, "maxIntervalSeconds"), message: `must be >= intervalSeconds (${interval})` }]
    : [];
}

/** Task timeouts by action: only `core.callback` may wait longer than the worker runs, and have heartbeats. */
function timeoutProblems(task: Record<string, unknown>, path: string): Problem[] {
  const callback = task.action === CALLBACK_ACTION;
  const max = callback ? MAX_CALLBACK_TIMEOUT_SECONDS : MAX_TASK_TIMEOUT_SECONDS;
  const problems: Problem[] = [];
  const timeout = task.timeoutSeconds;
  if (typeof timeout === "number" && timeout > max) {
    problems.push({
      path: joinPath(path, "timeoutSeconds"),
      message: callback
        ? `must be <= ${max} (7 days) for ${CALLBACK_ACTION}`
        : `must be <= ${max} (only ${CALLBACK_ACTION} tasks may wait longer, up to ${MAX_CALLBACK_TIMEOUT_SECONDS})`,
    });
  }
  const heartbeat = task.heartbeatSeconds;
  if (heartbeat !== undefined && !callback) {
    problems.push({
      path: joinPath(path, "heartbeatSeconds"),
      message: `is only allowed on ${CALLBACK_ACTION} tasks`,
    });
  } else if (typeof heartbeat === "number") {
    const effective = typeof timeout === "number" ? timeout : DEFAULT_CALLBACK_TIMEOUT_SECONDS;
    if (heartbeat > effective) {
      problems.push({
        path: joinPath(path, "heartbeatSeconds"),
        message: `must be <= timeoutSeconds (${effective})`,
      });
    }
  }
  return problems;
}

/** A definition that passed validation, before its defaults are filled in. */
interface RawDefinition extends Omit<WorkflowDefinition, "tasks"> {
  tasks: Record<string, RawTask>;
}

interface RawTask extends Omit<TaskDefinition, "next" | "retry"> {
  next?: { when?: When; do: string | string[] }[];
  retry?: Partial<RetryPolicy> & { maxAttempts: number };
}

function normalize(raw: RawDefinition): WorkflowDefinition {
  const source = structuredClone(raw);
  return withoutUndefined({
    name: source.name,
    description: source.description,
    concurrencyKey: source.concurrencyKey,
    onConcurrencyConflict: source.onConcurrencyConflict,
    input: source.input,
    limits: source.limits,
    tasks: Object.fromEntries(
      Object.entries(source.tasks).map(([name, task]) => [name, normalizeTask(task)]),
    ),
    output: source.output,
    timeoutSeconds: source.timeoutSeconds,
  });
}

function normalizeTask(task: RawTask): TaskDefinition {
  return withoutUndefined({
    action: task.action,
    input: task.input,
    next: task.next?.map(
      (transition): Transition => ({
        when: transition.when ?? "succeeded",
        do: typeof transition.do === "string" ? [transition.do] : transition.do,
      }),
    ),
    join: task.join,
    withItems: task.withItems,
    concurrency: task.concurrency,
    toleratedFailurePercentage: task.toleratedFailurePercentage,
    retry: task.retry && normalizeRetry(task.retry),
    timeoutSeconds: task.timeoutSeconds,
    heartbeatSeconds: task.heartbeatSeconds,
  });
}

function normalizeRetry(retry: NonNullable<RawTask["retry"]>): RetryPolicy {
  return withoutUndefined({
    maxAttempts: retry.maxAttempts,
    intervalSeconds: retry.intervalSeconds ?? DEFAULT_RETRY_INTERVAL_SECONDS,
    backoffRate: retry.backoffRate ?? DEFAULT_RETRY_BACKOFF_RATE,
    maxIntervalSeconds: retry.maxIntervalSeconds,
  });
}

/** Optional fields are absent rather than undefined, so that the stored and hashed forms agree. */
function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined)) as T;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
