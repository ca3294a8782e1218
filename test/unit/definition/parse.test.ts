import { describe, expect, it } from "vitest";
import { isYamlContentType, parseDefinitionBody } from "../../../lib/definition/parse";
import { MalformedBodyError } from "../../../lib/errors";

function malformed(body: string | undefined, contentType?: string): MalformedBodyError {
  try {
    parseDefinitionBody(body, contentType);
  } catch (error) {
    expect(error).toBeInstanceOf(MalformedBodyError);
    expect((error as MalformedBodyError).code).toBe("MalformedBody");
    return error as MalformedBodyError;
  }
  throw new Error("expected a MalformedBodyError");
}

describe("parseDefinitionBody", () => {
  it("reads JSON by default", () => {
    expect(parseDefinitionBody('{"name": "x", "tasks": {}}', undefined)).toEqual({ name: "x", tasks: {} });
    expect(parseDefinitionBody('{"a": [1, 2.5, null, true]}', "application/json")).toEqual({
      a: [1, 2.5, null, true],
    });
    expect(parseDefinitionBody('{"a": 1}', "text/plain")).toEqual({ a: 1 });
  });

  it.each([
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "application/yaml; charset=utf-8",
    "Application/YAML;charset=UTF-8",
  ])("reads YAML when the content type is %s", (contentType) => {
    expect(parseDefinitionBody("name: x\ntasks:\n  a: { action: core.noop }\n", contentType)).toEqual({
      name: "x",
      tasks: { a: { action: "core.noop" } },
    });
  });

  it("reads YAML 1.2 core scalars: no dates, no yes/no booleans", () => {
    expect(
      parseDefinitionBody("d: 2024-01-01\nb: yes\nn: 010\nf: 1.5\nt: true\nz: ~\n", "text/yaml"),
    ).toEqual({
      d: "2024-01-01",
      b: "yes",
      n: 10,
      f: 1.5,
      t: true,
      z: null,
    });
  });

  it("accepts the core schema's own tags", () => {
    expect(parseDefinitionBody("a: !!str 1\nb: !!int '3'\nc: !!map {k: !!seq [1]}\n", "text/yaml")).toEqual({
      a: "1",
      b: 3,
      c: { k: [1] },
    });
  });

  it("resolves a few aliases", () => {
    expect(parseDefinitionBody("a: &x {k: 1}\nb: *x\n", "application/yaml")).toEqual({
      a: { k: 1 },
      b: { k: 1 },
    });
  });

  it.each([
    [undefined, undefined],
    ["", undefined],
    ["  \n ", "application/yaml"],
  ])("refuses an empty body (%j)", (body, contentType) => {
    expect(malformed(body, contentType).message).toBe("the request body is empty");
  });

  it("refuses malformed JSON, naming the line and column", () => {
    const error = malformed('{\n  "a": 1,\n}', "application/json");
    expect(error.message).toMatch(/^the body is not valid JSON: /);
    expect(error.message).toMatch(/line 3 column 1/);
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it("refuses JSON sent without the YAML content type even if it is YAML", () => {
    expect(malformed("name: x\n").message).toMatch(/not valid JSON/);
  });

  it("refuses malformed YAML, naming the line and column", () => {
    const error = malformed("name: x\ntasks: [a\nother: 1\n", "application/yaml");
    expect(error.message).toMatch(/^the body is not valid YAML: .*\(line \d+, column \d+\)/);
  });

  it("refuses duplicate keys in YAML", () => {
    const error = malformed("name: x\nname: y\n", "application/yaml");
    expect(error.message).toBe("the body is not valid YAML: Map keys must be unique (line 2, column 1)");
  });

  it.each([
    "a: !!js/function 'function () {}'\n",
    "a: !custom 1\n",
    "a: !!binary aGVsbG8=\n",
    "a: !!set {x}\n",
    "a: !!timestamp 2020-01-01\n",
  ])("refuses tags outside the core schema: %j", (body) => {
    expect(malformed(body, "application/yaml").message).toMatch(/Unresolved tag/);
  });

  it("refuses several YAML documents", () => {
    expect(malformed("a: 1\n---\nb: 2\n", "application/yaml").message).toMatch(/multiple documents/);
  });

  it("refuses numbers JSON cannot hold", () => {
    expect(malformed("timeoutSeconds: .inf\n", "application/yaml").message).toMatch(/Infinity/);
    expect(malformed("x: .nan\n", "application/yaml").message).toMatch(/NaN/);
  });

  it("refuses an alias bomb", () => {
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 8; i++) {
      const previous = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      lines.push(`${name}: &${name} [${Array(10).fill(`*${previous}`).join(", ")}]`);
    }
    expect(malformed(`${lines.join("\n")}\n`, "application/yaml").message).toMatch(/not valid YAML/);
  });
});

describe("isYamlContentType", () => {
  it.each([
    ["application/yaml", true],
    ["text/yaml; charset=utf-8", true],
    ["application/x-yaml", true],
    ["application/json", false],
    ["text/plain", false],
    [undefined, false],
    ["not a media type", false],
  ])("%s: %s", (contentType, expected) => {
    expect(isYamlContentType(contentType)).toBe(expected);
  });
});
