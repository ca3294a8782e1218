import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson, contentHash, definitionHash } from "../../../lib/definition/hash";
import { parseDefinitionBody } from "../../../lib/definition/parse";
import { validateDefinition } from "../../../lib/definition/validate";

const actions = new Set(["core.noop", "core.echo", "core.sleep", "core.fail", "core.http"]);
const designYaml = readFileSync(new URL("design-example.yaml", import.meta.url), "utf8");

/** The DESIGN.md example written as JSON, keys in another order, `when` and list brackets left out. */
const designJson = JSON.stringify({
  output: "{% tasks.validate.output %}",
  tasks: {
    cleanup: { action: "core.noop" },
    validate: { action: "core.noop" },
    process_items: {
      timeoutSeconds: 30,
      retry: { backoffRate: 2, intervalSeconds: 1, maxAttempts: 3 },
      next: [{ do: "validate" }, { do: ["cleanup"], when: "failed" }],
      input: { body: { index: "{% index %}", value: "{% item %}" }, url: "{% input.callbackUrl %}" },
      concurrency: 3,
      withItems: "{% tasks.prepare.output.items %}",
      action: "core.http",
    },
    prepare: { next: [{ do: "process_items" }], input: { items: "{% input.items %}" }, action: "core.echo" },
  },
  input: { required: ["items"], type: "object" },
  concurrencyKey: "{% input.repo %}",
  name: "process-batch",
});

function hashOf(body: string, contentType?: string): string {
  return definitionHash(validateDefinition(parseDefinitionBody(body, contentType), { actions }));
}

describe("definitionHash", () => {
  it("is a sha256 hex digest", () => {
    expect(hashOf(designYaml, "application/yaml")).toMatch(/^[0-9a-f]{64}$/);
  });

  it("is the same for the same definition sent as YAML or as JSON, keys in any order", () => {
    expect(hashOf(designJson, "application/json")).toBe(hashOf(designYaml, "application/yaml"));
  });

  it("is the same whether defaults are written out or left out", () => {
    const short = {
      name: "wf",
      tasks: {
        a: { action: "core.noop", retry: { maxAttempts: 2 }, next: [{ do: "b" }] },
        b: { action: "core.noop" },
      },
    };
    const long = {
      name: "wf",
      tasks: {
        a: {
          action: "core.noop",
          retry: { maxAttempts: 2, intervalSeconds: 1, backoffRate: 2 },
          next: [{ when: "succeeded", do: ["b"] }],
        },
        b: { action: "core.noop" },
      },
    };
    expect(hashOf(JSON.stringify(short))).toBe(hashOf(JSON.stringify(long)));
  });

  it("changes with any change of content", () => {
    const base = hashOf(designYaml, "application/yaml");
    expect(hashOf(designYaml.replace("concurrency: 3", "concurrency: 4"), "application/yaml")).not.toBe(base);
    expect(hashOf(designYaml.replace("do: [validate]", "do: [cleanup]"), "application/yaml")).not.toBe(base);
  });

  it("keeps the order of arrays", () => {
    expect(contentHash([1, 2])).not.toBe(contentHash([2, 1]));
  });
});

describe("canonicalJson", () => {
  it("sorts keys at every depth and leaves out undefined values", () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } })).toBe(
      '{"a":{"d":[{"y":2,"z":1}]},"b":1}',
    );
  });

  it("does not change the value", () => {
    const value = { b: 1, a: 2 };
    canonicalJson(value);
    expect(Object.keys(value)).toEqual(["b", "a"]);
  });

  it("is the same for any order of keys, and reads back as the same value", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.array(fc.nat(), { minLength: 1 }), (value, picks) => {
        let next = 0;
        const pick = (n: number) => (picks[next++ % picks.length] ?? 0) % n;
        const reordered = reorder(value, pick);
        expect(canonicalJson(reordered)).toBe(canonicalJson(value));
        expect(contentHash(reordered)).toBe(contentHash(value));
        expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });
});

/** The same JSON value with the keys of every object in another order. */
function reorder(value: unknown, pick: (n: number) => number): unknown {
  if (Array.isArray(value)) return value.map((item) => reorder(item, pick));
  if (value === null || typeof value !== "object") return value;
  const entries = Object.entries(value);
  const shuffled: [string, unknown][] = [];
  while (entries.length > 0) {
    const [entry] = entries.splice(pick(entries.length), 1);
    if (entry) shuffled.push([entry[0], reorder(entry[1], pick)]);
  }
  return Object.fromEntries(shuffled);
}
