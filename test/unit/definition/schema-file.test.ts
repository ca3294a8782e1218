/**
 * schema/workflow.schema.json, the definition schema for editors: the generator's output, with a
 * description on every property and built-in action, and one that the examples match.
 */
import { readdirSync, readFileSync } from "node:fs";
import Ajv from "ajv";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import "../../../lib/actions/core";
import { actionNames } from "../../../lib/actions/registry";
import { renderWorkflowJsonSchema, WORKFLOW_SCHEMA_FILE } from "../../../lib/definition/json-schema";
import { BUILT_IN_ACTIONS, workflowDefinitionSchema } from "../../../lib/definition/schema";

const root = new URL("../../../", import.meta.url);
const fileText = readFileSync(new URL(WORKFLOW_SCHEMA_FILE, root), "utf8");
const file = JSON.parse(fileText);
const examples = readdirSync(new URL("examples/", root)).filter((name) => name.endsWith(".yaml"));
const SCHEMA_LINE = "# yaml-language-server: $schema=../schema/workflow.schema.json";

type Schema = Record<string, unknown>;
const isSchema = (value: unknown): value is Schema =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/**
 * The paths of the schemas that describe something a definition writes (the root, every property,
 * every definition, every additionalProperties value that is not just a `$ref`) but have no
 * description.
 */
function undescribed(schema: Schema, path = "#", mustDescribe = true): string[] {
  const missing = mustDescribe && typeof schema.description !== "string" ? [path] : [];
  const children: [string, unknown, boolean][] = [];
  for (const key of ["properties", "definitions"]) {
    if (isSchema(schema[key])) {
      for (const [name, child] of Object.entries(schema[key]))
        children.push([`${path}/${key}/${name}`, child, true]);
    }
  }
  const additional = schema.additionalProperties;
  if (isSchema(additional)) {
    const onlyRef = Object.keys(additional).length === 1 && "$ref" in additional;
    children.push([`${path}/additionalProperties`, additional, !onlyRef]);
  }
  for (const key of ["items", "propertyNames"]) {
    if (isSchema(schema[key])) children.push([`${path}/${key}`, schema[key], false]);
  }
  return [
    ...missing,
    ...children.flatMap(([at, child, must]) => (isSchema(child) ? undescribed(child, at, must) : [])),
  ];
}

describe(WORKFLOW_SCHEMA_FILE, () => {
  it("is what the generator writes from lib/definition/schema.ts", () => {
    expect(
      fileText === renderWorkflowJsonSchema(),
      `${WORKFLOW_SCHEMA_FILE} is out of date: run \`npm run schema\` and commit the file`,
    ).toBe(true);
  });

  it("is draft-07 with an $id and a title, and leaves out the validator's own keyword", () => {
    expect(file.$schema).toBe("http://json-schema.org/draft-07/schema#");
    expect(file.$id).toMatch(/^[a-z][a-z0-9+.-]*:\S+$/);
    expect(file.title).toEqual(expect.any(String));
    expect(fileText).not.toContain("problemMessages");
    expect(JSON.stringify(workflowDefinitionSchema)).toContain("problemMessages");
  });

  it("describes every property and definition", () => {
    // the check itself finds what is missing
    expect(
      undescribed({
        description: "root",
        properties: {
          a: { description: "a" },
          b: { type: "object", additionalProperties: { type: "string" } },
        },
        definitions: { c: { properties: { d: {} } } },
      }),
    ).toEqual([
      "#/properties/b",
      "#/properties/b/additionalProperties",
      "#/definitions/c",
      "#/definitions/c/properties/d",
    ]);
    expect(undescribed(file)).toEqual([]);
  });

  it("describes every built-in action, and only those", () => {
    const builtIn = [...actionNames()].filter((name) => name.startsWith("core.")).sort();
    expect(Object.keys(BUILT_IN_ACTIONS).sort()).toEqual(builtIn);
    const action = file.definitions.task.properties.action;
    expect([...action.examples].sort()).toEqual(builtIn);
    for (const name of builtIn) expect(action.description).toContain(`- ${name}: ${BUILT_IN_ACTIONS[name]}`);
  });

  it("accepts every example and refuses a typo", () => {
    const validate = new Ajv({ strict: true, allowUnionTypes: true }).compile(file);
    expect(examples).toContain("hello.yaml");
    for (const name of examples) {
      const definition = parse(readFileSync(new URL(`examples/${name}`, root), "utf8"));
      expect(validate(definition), `examples/${name}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
    const typo = { name: "t", tasks: { a: { action: "core.noop", nxt: [{ do: "b" }] } } };
    expect(validate(typo)).toBe(false);
    expect(validate.errors?.[0]).toMatchObject({
      keyword: "additionalProperties",
      params: { additionalProperty: "nxt" },
    });
  });

  it("is named by the yaml-language-server line that each example starts with", () => {
    for (const name of examples) {
      const firstLine = readFileSync(new URL(`examples/${name}`, root), "utf8").split("\n")[0];
      expect(firstLine, `examples/${name}`).toBe(SCHEMA_LINE);
      const target = SCHEMA_LINE.split("$schema=")[1] as string;
      expect(new URL(target, new URL(`examples/${name}`, root)).href).toBe(
        new URL(WORKFLOW_SCHEMA_FILE, root).href,
      );
    }
  });
});
