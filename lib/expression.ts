/**
 * Templates: JSON values whose strings may hold JSONata expressions inside `{% %}`, as AWS Step
 * Functions writes them. A string that is exactly one expression (whitespace around allowed) takes
 * the expression's value and type; a string mixing text and expressions is interpolated.
 */
import jsonata from "jsonata";
import { joinPath } from "./definition/problem-path";
import { ExpressionError, type Problem } from "./errors";

/** Guardrails jsonata checks while it evaluates, so that a runaway expression fails instead of hanging. */
const EVALUATION_LIMITS = { timeout: 2_000, stack: 500 };
const CACHE_LIMIT = 1_000;
const SHOWN_SOURCE_LENGTH = 80;
const EXPRESSION = /\{%([\s\S]*?)%\}/g;

type Part = string | { source: string };

type ParsedString =
  | { kind: "text" }
  | { kind: "exact"; source: string }
  | { kind: "interpolated"; parts: Part[] }
  | { kind: "unterminated" };

function parseString(value: string): ParsedString {
  if (!value.includes("{%")) return { kind: "text" };
  const parts: Part[] = [];
  let end = 0;
  for (const match of value.matchAll(EXPRESSION)) {
    if (match.index > end) parts.push(value.slice(end, match.index));
    parts.push({ source: match[1] ?? "" });
    end = match.index + match[0].length;
  }
  const rest = value.slice(end);
  if (rest.includes("{%")) return { kind: "unterminated" };
  if (rest !== "") parts.push(rest);
  const expressions = parts.filter((part) => typeof part !== "string");
  const onlyWhitespaceAround = parts.every((part) => typeof part !== "string" || part.trim() === "");
  if (expressions.length === 1 && onlyWhitespaceAround && expressions[0]) {
    return { kind: "exact", source: expressions[0].source };
  }
  return { kind: "interpolated", parts };
}

/** True when the value, or any value inside it, is a string holding a `{% %}` expression. */
export function hasExpression(value: unknown): boolean {
  if (typeof value === "string") return parseString(value).kind !== "text";
  if (Array.isArray(value)) return value.some(hasExpression);
  if (isObject(value)) return Object.values(value).some(hasExpression);
  return false;
}

/** True when the value is a string that is exactly one `{% %}` expression. */
export function isExpression(value: unknown): value is string {
  return typeof value === "string" && parseString(value).kind === "exact";
}

const compiled = new Map<string, jsonata.Expression>();

/** Compiles (or finds in the cache) one expression; throws jsonata's error when it does not compile. */
function compile(source: string): jsonata.Expression {
  const cached = compiled.get(source);
  if (cached) return cached;
  const expression = jsonata(source, EVALUATION_LIMITS);
  if (compiled.size >= CACHE_LIMIT) {
    const oldest = compiled.keys().next();
    if (!oldest.done) compiled.delete(oldest.value);
  }
  compiled.set(source, expression);
  return expression;
}

/**
 * Checks every expression of a template compiles, without evaluating anything. Problems are named
 * by their path under `basePath` (`tasks.process_items.input.url`).
 */
export function checkTemplate(template: unknown, basePath: string): Problem[] {
  if (typeof template === "string") {
    const parsed = parseString(template);
    if (parsed.kind === "unterminated") return [{ path: basePath, message: unterminatedMessage() }];
    const sources =
      parsed.kind === "exact"
        ? [parsed.source]
        : parsed.kind === "interpolated"
          ? parsed.parts.flatMap((part) => (typeof part === "string" ? [] : [part.source]))
          : [];
    return sources.flatMap((source) => {
      try {
        compile(source);
        return [];
      } catch (error) {
        return [{ path: basePath, message: `invalid expression ${show(source)}: ${jsonataMessage(error)}` }];
      }
    });
  }
  if (Array.isArray(template)) {
    return template.flatMap((item, index) => checkTemplate(item, joinPath(basePath, index)));
  }
  if (isObject(template)) {
    return Object.entries(template).flatMap(([key, value]) => checkTemplate(value, joinPath(basePath, key)));
  }
  return [];
}

/**
 * Evaluates a template against `context`, which is the JSONata input document (so `input.items`,
 * `tasks.prepare.output`, `item` and `index` are plain paths). Results are plain JSON: an
 * expression with no value is left out of an object, and becomes null in an array or at the top.
 * Errors are `ExpressionError`s naming the path of the failing string under `basePath`.
 */
export async function evaluateTemplate(
  template: unknown,
  context: Record<string, unknown>,
  basePath = "",
): Promise<unknown> {
  return (await evaluateNode(template, context, basePath)) ?? null;
}

async function evaluateNode(node: unknown, context: Record<string, unknown>, path: string): Promise<unknown> {
  if (typeof node === "string") return evaluateString(node, context, path);
  if (Array.isArray(node)) {
    const items = await Promise.all(
      node.map((item, index) => evaluateNode(item, context, joinPath(path, index))),
    );
    return items.map((item) => item ?? null);
  }
  if (isObject(node)) {
    const entries = await Promise.all(
      Object.entries(node).map(async ([key, value]) => [
        key,
        await evaluateNode(value, context, joinPath(path, key)),
      ]),
    );
    return Object.fromEntries(entries.filter(([, value]) => value !== undefined));
  }
  return node;
}

async function evaluateString(
  value: string,
  context: Record<string, unknown>,
  path: string,
): Promise<unknown> {
  const parsed = parseString(value);
  switch (parsed.kind) {
    case "text":
      return value;
    case "unterminated":
      throw new ExpressionError(`${located(path)}${unterminatedMessage()}`);
    case "exact":
      return run(parsed.source, context, path);
    case "interpolated": {
      const pieces = await Promise.all(
        parsed.parts.map(async (part) =>
          typeof part === "string" ? part : asText(await run(part.source, context, path)),
        ),
      );
      return pieces.join("");
    }
  }
}

async function run(source: string, context: Record<string, unknown>, path: string): Promise<unknown> {
  let expression: jsonata.Expression;
  try {
    expression = compile(source);
  } catch (error) {
    throw new ExpressionError(
      `${located(path)}invalid expression ${show(source)}: ${jsonataMessage(error)}`,
      error,
    );
  }
  let result: unknown;
  try {
    result = await expression.evaluate(context);
  } catch (error) {
    throw new ExpressionError(
      `${located(path)}expression ${show(source)} failed: ${jsonataMessage(error)}`,
      error,
    );
  }
  return toJson(result, source, path);
}

/** JSONata results can be sequences, null-prototype objects or functions: keep only plain JSON. */
function toJson(value: unknown, source: string, path: string): unknown {
  if (value === undefined) return undefined;
  const text = JSON.stringify(value, (_key, item: unknown) => {
    if (isFunction(item)) {
      throw new ExpressionError(
        `${located(path)}expression ${show(source)} evaluated to a function, not JSON`,
      );
    }
    return item;
  });
  return text === undefined ? undefined : JSON.parse(text);
}

function asText(value: unknown): string {
  if (value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function isFunction(value: unknown): boolean {
  if (typeof value === "function") return true;
  if (!isObject(value)) return false;
  return value._jsonata_function === true || value._jsonata_lambda === true;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function located(path: string): string {
  return path === "" ? "" : `${path}: `;
}

function unterminatedMessage(): string {
  return '"{%" has no closing "%}"';
}

function show(source: string): string {
  const trimmed = source.trim();
  const shown = trimmed.length > SHOWN_SOURCE_LENGTH ? `${trimmed.slice(0, SHOWN_SOURCE_LENGTH)}…` : trimmed;
  return `{% ${shown} %}`;
}

/** jsonata throws plain objects `{code, position, token, message}`; anything else is an Error or worse. */
function jsonataMessage(error: unknown): string {
  if (isObject(error) && typeof error.code === "string") {
    const message = typeof error.message === "string" ? error.message : "error";
    const position = typeof error.position === "number" ? `, position ${error.position}` : "";
    return `${message} (${error.code}${position})`;
  }
  return error instanceof Error ? error.message : String(error);
}
