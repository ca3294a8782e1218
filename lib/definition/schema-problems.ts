/**
 * ajv's errors as problems people can act on: `{path: "tasks.prepare.nxt", message: "is not an
 * allowed property (allowed: ...)"}` rather than `{instancePath: "/tasks/prepare", keyword: ...}`.
 */
import type { ErrorObject } from "ajv";
import type { Problem } from "../errors";
import { joinPath, pointerToPath } from "./problem-path";

export interface SchemaProblemOptions {
  /** Prefix of every path (`input` for a run input). */
  basePath?: string;
  /** Messages replacing ajv's own, by the failing keyword's `schemaPath`. */
  messages?: Readonly<Record<string, string>>;
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
    const custom = options.messages?.[error.schemaPath];
    if (custom !== undefined) problem.message = custom;
    const key = `${problem.path}\n${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  return problems;
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
  return typeof value === "string" ? value : JSON.stringify(value);
}
