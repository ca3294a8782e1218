import "../../helpers/unit-env";
import { describe, expect, it } from "vitest";
import { checkCallbackBody } from "../../../lib/engine/callback-body";
import { decodeToken, encodeToken, isSuspended, sameToken } from "../../../lib/engine/callback-token";
import type { TaskRecord } from "../../../lib/engine/task-record";
import { InvalidRequestError } from "../../../lib/errors";

const runId = "0b8f2c1e-4a8e-4a4e-9a43-5b1f7c8d9e0f";

describe("callback tokens", () => {
  it("round-trip the execution key and attempt, item or not", () => {
    expect(decodeToken(encodeToken({ runId, task: "wait", attempt: 1 }))).toEqual({
      runId,
      task: "wait",
      attempt: 1,
    });
    expect(decodeToken(encodeToken({ runId, task: "wait", item: 42, attempt: 3 }))).toEqual({
      runId,
      task: "wait",
      item: 42,
      attempt: 3,
    });
  });

  it("are URL-safe and carry a fresh 128-bit secret each time", () => {
    const a = encodeToken({ runId, task: "wait", attempt: 1 });
    const b = encodeToken({ runId, task: "wait", attempt: 1 });
    expect(a).toMatch(/^[A-Za-z0-9_-]+\.[0-9a-f]{32}$/);
    expect(a).not.toBe(b);
    expect(a.split(".")[0]).toBe(b.split(".")[0]);
  });

  it("refuse anything malformed", () => {
    const json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const secret = "a".repeat(32);
    for (const token of [
      "",
      "abc",
      `${json({ runId, task: "wait", attempt: 1 })}`,
      `${json({ runId, task: "wait", attempt: 1 })}.${"a".repeat(31)}`,
      `${json({ runId, task: "wait", attempt: 1 })}.${"A".repeat(32)}`,
      `!!.${secret}`,
      `${Buffer.from("not json").toString("base64url")}.${secret}`,
      `${json([runId, "wait", 1])}.${secret}`,
      `${json({ runId, task: "wait" })}.${secret}`,
      `${json({ runId, task: "wait", attempt: 0 })}.${secret}`,
      `${json({ runId, task: "wait", attempt: 1.5 })}.${secret}`,
      `${json({ runId, task: "wait", item: -1, attempt: 1 })}.${secret}`,
      `${json({ runId, task: "bad name", attempt: 1 })}.${secret}`,
      `${json({ runId: "a/b", task: "wait", attempt: 1 })}.${secret}`,
      `${json({ runId, task: "wait", attempt: 1, extra: 1 })}.${secret}`,
    ]) {
      expect(decodeToken(token), token).toBeUndefined();
    }
  });

  it("match only the stored token, exactly", () => {
    const token = encodeToken({ runId, task: "wait", attempt: 1 });
    expect(sameToken(token, token)).toBe(true);
    expect(sameToken(undefined, token)).toBe(false);
    expect(sameToken(token, `${token.slice(0, -1)}0`)).toBe(token.endsWith("0"));
    expect(sameToken(token, `${token}0`)).toBe(false);
  });

  it("make an execution suspended only while running with its current attempt's token", () => {
    const record = (status: string, attempt: number, tokenAttempt?: number) =>
      ({
        runId,
        task: "wait",
        status,
        attempt,
        callbackToken:
          tokenAttempt === undefined
            ? undefined
            : encodeToken({ runId, task: "wait", attempt: tokenAttempt }),
      }) as TaskRecord;
    expect(isSuspended(record("running", 1, 1))).toBe(true);
    expect(isSuspended(record("running", 2, 1))).toBe(false); // claimed again, not yet suspended
    expect(isSuspended(record("running", 1))).toBe(false);
    expect(isSuspended(record("succeeded", 1, 1))).toBe(false);
    expect(isSuspended(record("queued", 1, 1))).toBe(false);
  });
});

describe("callback bodies (their JSON Schema, lib/engine/callback-body.ts)", () => {
  const problemsOf = (body: unknown) => {
    try {
      checkCallbackBody(body);
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidRequestError);
      return (error as InvalidRequestError).details as { path: string; message: string }[];
    }
    throw new Error("expected InvalidRequestError");
  };

  it("accepts exactly one of {output} and {error: {code?, message}}", () => {
    expect(checkCallbackBody({ output: { a: 1 } })).toEqual({ output: { a: 1 } });
    expect(checkCallbackBody({ output: null })).toEqual({ output: null });
    expect(checkCallbackBody({ error: { message: "no" } })).toEqual({ error: { message: "no" } });
    expect(checkCallbackBody({ error: { code: "Rejected", message: "no" } })).toEqual({
      error: { code: "Rejected", message: "no" },
    });
  });

  it("refuses everything else, with every problem and its path", () => {
    expect(problemsOf(undefined)).toEqual([
      { path: "", message: "must be a JSON object with `output` or `error`" },
    ]);
    expect(problemsOf([])).toHaveLength(1);
    expect(problemsOf("x")).toHaveLength(1);
    expect(problemsOf({})).toEqual([{ path: "", message: "must have exactly one of `output` and `error`" }]);
    expect(problemsOf({ output: 1, error: { message: "x" } })).toEqual([
      { path: "", message: "must have exactly one of `output` and `error`" },
    ]);
    expect(problemsOf({ output: 1, status: "ok" })).toContainEqual({
      path: "status",
      message: "is not an allowed property (allowed: output, error)",
    });
    expect(problemsOf({ error: "no" })).toEqual([
      { path: "error", message: "must be an object `{code?, message}`" },
    ]);
    expect(problemsOf({ error: { code: 5, message: "", why: 1 } })).toEqual([
      { path: "error.why", message: "is not an allowed property (allowed: code, message)" },
      { path: "error.code", message: "must be a string" },
      { path: "error.message", message: "must be a non-empty string" },
    ]);
    expect(problemsOf({ error: { code: "9x", message: "x".repeat(4097) } }).map((p) => p.path)).toEqual([
      "error.code",
      "error.message",
    ]);
    expect(problemsOf({ output: "x".repeat(300 * 1024) })[0]?.path).toBe("output");
  });
});
