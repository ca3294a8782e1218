import { describe, expect, it } from "vitest";
import { joinPath, pointerToPath } from "../../../lib/definition/problem-path";

describe("joinPath", () => {
  it("writes names with dots, indices in brackets and other keys quoted", () => {
    expect(joinPath("", "tasks")).toBe("tasks");
    expect(joinPath("tasks", "process-items")).toBe("tasks.process-items");
    expect(joinPath("tasks.a.next", 0)).toBe("tasks.a.next[0]");
    expect(joinPath("", 3)).toBe("[3]");
    expect(joinPath("headers", "x.y")).toBe('headers["x.y"]');
    expect(joinPath("tasks", "9lives")).toBe('tasks["9lives"]');
    expect(joinPath("", "")).toBe('[""]');
  });
});

describe("pointerToPath", () => {
  const document = { tasks: { a: { next: [{ do: ["b", "c"] }] } }, map: { "0": { "a/b": { "~x": 1 } } } };

  it("turns an ajv instancePath into a dotted path", () => {
    expect(pointerToPath("/tasks/a/next/0/do/1", document)).toBe("tasks.a.next[0].do[1]");
    expect(pointerToPath("", document)).toBe("");
    expect(pointerToPath("", document, "input")).toBe("input");
    expect(pointerToPath("/tasks/a", document, "input")).toBe("input.tasks.a");
  });

  it("writes a digit key of an object as a key, not an index", () => {
    expect(pointerToPath("/map/0", document)).toBe('map["0"]');
  });

  it("unescapes ~1 and ~0", () => {
    expect(pointerToPath("/map/0/a~1b/~0x", document)).toBe('map["0"]["a/b"]["~x"]');
  });

  it("goes on past the end of the document", () => {
    expect(pointerToPath("/missing/0/x", document)).toBe('missing["0"].x');
  });
});
