/**
 * Reads a workflow definition from a request body: JSON by default, YAML when the content type
 * says so. YAML is read as plain data (YAML 1.2 core schema: no custom tags, unique keys).
 */
import { MIMEType } from "node:util";
import { LineCounter, parseDocument } from "yaml";
import { MalformedBodyError } from "../errors";

const YAML_MEDIA_TYPES = new Set(["application/yaml", "application/x-yaml", "text/yaml"]);
/** Enough for any sensible definition; stops "billion laughs" alias bombs. */
const MAX_YAML_ALIASES = 100;
const MAX_REPORTED_YAML_ERRORS = 3;

export function isYamlContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  try {
    return YAML_MEDIA_TYPES.has(new MIMEType(contentType).essence);
  } catch {
    return false;
  }
}

export function parseDefinitionBody(body: string | undefined, contentType: string | undefined): unknown {
  if (body === undefined || body.trim() === "") throw new MalformedBodyError("the request body is empty");
  return isYamlContentType(contentType) ? parseYaml(body) : parseJson(body);
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (error) {
    // V8 names the position, and the line and column, when it knows them.
    throw new MalformedBodyError(`the body is not valid JSON: ${(error as Error).message}`, error);
  }
}

function parseYaml(body: string): unknown {
  const lineCounter = new LineCounter();
  const document = parseDocument(body, {
    lineCounter,
    version: "1.2",
    schema: "core",
    merge: false,
    // Explicit `!!binary`, `!!set`, `!!timestamp`... would become Buffers, Sets and Dates.
    resolveKnownTags: false,
    uniqueKeys: true,
    prettyErrors: false,
  });
  // Warnings are errors here: an unresolved tag (`!!js/function`, `!custom`) must not become a string.
  const problems = [...document.errors, ...document.warnings];
  if (problems.length > 0) {
    const described = problems.slice(0, MAX_REPORTED_YAML_ERRORS).map((problem) => {
      const { line, col } = lineCounter.linePos(problem.pos[0]);
      return `${problem.message} (line ${line}, column ${col})`;
    });
    const more =
      problems.length > MAX_REPORTED_YAML_ERRORS
        ? ` (and ${problems.length - MAX_REPORTED_YAML_ERRORS} more)`
        : "";
    throw new MalformedBodyError(`the body is not valid YAML: ${described.join("; ")}${more}`, problems[0]);
  }
  try {
    return document.toJS({
      maxAliasCount: MAX_YAML_ALIASES,
      reviver: (_key, value) => {
        if (typeof value === "number" && !Number.isFinite(value)) {
          throw new MalformedBodyError(`the body holds ${value}, which JSON cannot represent`);
        }
        return value;
      },
    });
  } catch (error) {
    if (error instanceof MalformedBodyError) throw error;
    throw new MalformedBodyError(`the body is not valid YAML: ${(error as Error).message}`, error);
  }
}
