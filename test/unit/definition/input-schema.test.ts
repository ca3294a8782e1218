import { describe, expect, it } from "vitest";
import { checkInputSchema, compileInputSchema, validateRunInput } from "../../../lib/definition/input-schema";
import { InvalidInputError } from "../../../lib/errors";

const schema = {
  type: "object",
  required: ["items", "callbackUrl"],
  additionalProperties: false,
  properties: {
    items: { type: "array", items: { type: "integer", minimum: 0 }, maxItems: 3 },
    callbackUrl: { type: "string", pattern: "^https?://" },
    options: { type: "object", properties: { mode: { enum: ["fast", "safe"] } } },
  },
};

function invalid(input: unknown, inputSchema: object = schema): InvalidInputError {
  try {
    validateRunInput(inputSchema, input);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return error as InvalidInputError;
  }
  throw new Error("expected an InvalidInputError");
}

describe("validateRunInput", () => {
  it("accepts anything when the workflow has no input schema", () => {
    expect(() => validateRunInput(undefined, { anything: [1] })).not.toThrow();
    expect(() => validateRunInput(undefined, null)).not.toThrow();
  });

  it("accepts an input that matches", () => {
    expect(() =>
      validateRunInput(schema, { items: [1, 2], callbackUrl: "https://x", options: { mode: "safe" } }),
    ).not.toThrow();
  });

  it("accepts the DESIGN.md example's schema", () => {
    const example = { type: "object", required: ["items"] };
    expect(() => validateRunInput(example, { items: [] })).not.toThrow();
    expect(invalid({}, example).details).toEqual([{ path: "input.items", message: "is required" }]);
  });

  it("reports every problem with its path under input", () => {
    const error = invalid({
      items: [1, -1, "x", 4],
      callbackUrl: "ftp://x",
      options: { mode: "slow" },
      extra: true,
    });
    expect(error.code).toBe("InvalidInput");
    expect(error.details).toEqual([
      { path: "input.extra", message: "is not an allowed property" },
      { path: "input.items", message: "must NOT have more than 3 items" },
      { path: "input.items[1]", message: "must be >= 0" },
      { path: "input.items[2]", message: "must be an integer" },
      { path: "input.callbackUrl", message: 'must match pattern "^https?://"' },
      { path: "input.options.mode", message: 'must be one of: "fast", "safe"' },
    ]);
    expect(error.message).toBe(
      "the run input does not match the workflow's input schema: input.extra is not an allowed property; " +
        "input.items must NOT have more than 3 items; input.items[1] must be >= 0 (and 3 more)",
    );
  });

  it("names the input itself when it has the wrong type", () => {
    expect(invalid("text").details).toEqual([{ path: "input", message: "must be an object" }]);
  });

  it("reports missing properties at their own path", () => {
    expect(invalid({ items: [] }).details).toEqual([{ path: "input.callbackUrl", message: "is required" }]);
  });

  it("quotes keys that are not plain names", () => {
    const error = invalid({ "a b": 1 }, { type: "object", properties: { "a b": { type: "string" } } });
    expect(error.details).toEqual([{ path: 'input["a b"]', message: "must be a string" }]);
  });
});

describe("compileInputSchema", () => {
  it("compiles a schema once, whatever the order of its keys", () => {
    const first = compileInputSchema({ type: "object", required: ["a"] });
    const again = compileInputSchema({ required: ["a"], type: "object" });
    expect(again).toBe(first);
  });

  it("lets two different schemas use the same $id", () => {
    const a = compileInputSchema({ $id: "https://example.com/input", type: "object" });
    const b = compileInputSchema({ $id: "https://example.com/input", type: "array" });
    expect(a({})).toBe(true);
    expect(b({})).toBe(false);
  });
});

describe("checkInputSchema", () => {
  it("finds no problem in a valid schema", () => {
    expect(checkInputSchema(schema)).toEqual([]);
    expect(checkInputSchema({ type: "object", required: ["items"] })).toEqual([]);
    expect(checkInputSchema({ $schema: "http://json-schema.org/draft-07/schema#", title: "x" })).toEqual([]);
  });

  it("reports what the meta-schema refuses, one problem per path", () => {
    expect(checkInputSchema({ type: "objet", properties: { a: { minimum: "1" } } })).toEqual([
      { path: "input.properties.a.minimum", message: "is not valid in a JSON Schema: must be a number" },
      {
        path: "input.type",
        message: expect.stringMatching(/^is not valid in a JSON Schema: must be one of: "array", /),
      },
    ]);
  });

  it("reports unknown keywords, so typos are caught", () => {
    expect(checkInputSchema({ type: "object", requried: ["a"] })).toEqual([
      { path: "input", message: 'is not a valid JSON Schema: strict mode: unknown keyword: "requried"' },
    ]);
  });

  it("reports references that do not resolve", () => {
    expect(checkInputSchema({ $ref: "https://example.com/elsewhere.json" }, "tasks")).toEqual([
      { path: "tasks", message: expect.stringContaining("can't resolve reference") },
    ]);
  });
});
