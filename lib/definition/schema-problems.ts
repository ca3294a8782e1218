/**
 * ajv's errors as problems people can act on: `{path: "tasks.prepare.nxt", message: "is not an
 * allowed property (allowed: ...)"}` rather than `{instancePath: "/tasks/prepare", keyword: ...}`.
 */
import type { ErrorObject } from "ajv";
import type { Problem } from "../errors";
import { joinPath, pointerToPath } from "./problem-path";

/**
 * A keyword a schema may use to replace ajv's messages with its own, by failing keyword:
 * `{type: "integer", problemMessages: {type: "must be a whole number of seconds"}}`. It needs an
 * ajv instance that knows the keyword (`ajv.addKeyword(MESSAGES_KEYWORD)`) and has `verbose` on.
 */
export const MESSAGES_KEYWORD = "problemMessages";

export interface SchemaProblemOptions {
  /** Prefix of every path (`input` for a run input). */
  basePath?: string;
}

export function schemaProblems(
  errors: readonly ErrorObject[] | null | undefined,
  document: unknown,
  options: SchemaProblemOptions = {},
): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const error of errors ?? []) {
    // ajv reports a bad property name twice: once by the failing keyword, once by `propertyNames`.
    if (error.keyword === "propertyNames") continue;
    const problem = toProblem(error, pointerToPath(error.instancePath, document, options.basePath ?? ""));
    const custom = customMessage(error);
    if (custom !== undefined) problem.message = custom;
    const key = `${problem.path}\n${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  return problems;
}

/** Problems in one line for a message: the first `shown` as `path message`, `; `-separated, and how many more. */
export function summarizeProblems(problems: readonly Problem[], shown = 3): string {
  const listed = problems.slice(0, shown).map((problem) => `${problem.path} ${problem.message}`);
  const more = problems.length > shown ? ` (and ${problems.length - shown} more)` : "";
  return `${listed.join("; ")}${more}`;
}

function toProblem(error: ErrorObject, at: string): Problem {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "required":
      return { path: joinPath(at, String(params.missingProperty)), message: "is required" };
    case "additionalProperties":
      return {
        path: joinPath(at, String(params.additionalProperty)),
        message: `is not an allowed property${allowedProperties(error)}`,
      };
    case "uniqueItems":
      return {
        path: joinPath(at, Math.max(Number(params.i), Number(params.j))),
        message: `repeats item ${Math.min(Number(params.i), Number(params.j))}`,
      };
    case "dependencies":
    case "dependentRequired":
      return {
        path: joinPath(at, String(params.property)),
        message: `is only allowed with ${String(params.missingProperty)}`,
      };
  }
  const path = error.propertyName === undefined ? at : joinPath(at, error.propertyName);
  switch (error.keyword) {
    case "type":
      return { path, message: `must be ${String(params.type).split(",").map(article).join(" or ")}` };
    case "enum":
      return { path, message: `must be one of: ${(params.allowedValues as unknown[]).map(show).join(", ")}` };
    case "const":
      return { path, message: `must be ${show(params.allowedValue)}` };
    default:
      return { path, message: error.message ?? `fails ${error.keyword}` };
  }
}

function customMessage(error: ErrorObject): string | undefined {
  const messages = (error.parentSchema as Record<string, unknown> | undefined)?.[MESSAGES_KEYWORD];
  if (messages === null || typeof messages !== "object") return undefined;
  const message = (messages as Record<string, unknown>)[error.keyword];
  return typeof message === "string" ? message : undefined;
}

/** With ajv's `verbose` option the error carries its schema, which lists the allowed properties. */
function allowedProperties(error: ErrorObject): string {
  const properties = (error.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return properties ? ` (allowed: ${Object.keys(properties).join(", ")})` : "";
}

function article(type: string): string {
  if (type === "null") return type;
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function show(value: unknown): string {
  return JSON.stringify(value);
}
