/**
 * The definition schema as editors and other tools get it: schema.ts's schema without the
 * validator's own `problemMessages`, written to schema/workflow.schema.json by `npm run schema`
 * and served at `GET /schema/workflow.json`. test/unit/definition/schema-file.test.ts fails when
 * the file is not what `renderWorkflowJsonSchema()` gives.
 */
import { workflowDefinitionSchema } from "./schema";
import { MESSAGES_KEYWORD } from "./schema-problems";

/** Where the generated file lives, relative to the repository root. */
export const WORKFLOW_SCHEMA_FILE = "schema/workflow.schema.json";

/** Lines of the file are kept within this width where they can be (biome.json's `lineWidth`). */
const LINE_WIDTH = 110;

/** The schema of a workflow definition (JSON Schema draft-07), the same the validator checks. */
export const workflowJsonSchema: Record<string, unknown> = withoutProblemMessages(
  workflowDefinitionSchema,
) as Record<string, unknown>;

/**
 * The text of schema/workflow.schema.json: keys in the order schema.ts writes them, two-space
 * indentation, and an array of plain values on one line when it fits, as `biome format` leaves it.
 */
export function renderWorkflowJsonSchema(): string {
  return `${render(workflowJsonSchema, "", "", "")}\n`;
}

/** A schema of ours as other tools read it: without the validator's own `problemMessages`. */
export function withoutProblemMessages(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withoutProblemMessages);
  if (schema === null || typeof schema !== "object") return schema;
  return Object.fromEntries(
    Object.entries(schema)
      .filter(([key]) => key !== MESSAGES_KEYWORD)
      .map(([key, value]) => [key, withoutProblemMessages(value)]),
  );
}

/** `value` as JSON, at `indent`, after `prefix` (`"key": `) and before `suffix` (`,` or nothing). */
function render(value: unknown, indent: string, prefix: string, suffix: string): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    if (value.every((item) => item === null || typeof item !== "object")) {
      const flat = `[${value.map((item) => JSON.stringify(item)).join(", ")}]`;
      if (indent.length + prefix.length + flat.length + suffix.length <= LINE_WIDTH) return flat;
    }
    const items = value.map(
      (item, index) => `${inner}${render(item, inner, "", index < value.length - 1 ? "," : "")}`,
    );
    return `[\n${items.join(",\n")}\n${indent}]`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0) return "{}";
    const lines = entries.map(([key, item], index) => {
      const keyText = `${JSON.stringify(key)}: `;
      return `${inner}${keyText}${render(item, inner, keyText, index < entries.length - 1 ? "," : "")}`;
    });
    return `{\n${lines.join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(value);
}
