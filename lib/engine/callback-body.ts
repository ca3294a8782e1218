/**
 * The body of `POST /callbacks/{token}`: `{output}` to complete the task, or `{error: {code?,
 * message}}` to fail it (without retry: the caller decided). Checked against its JSON Schema by
 * ajv, as definitions are; the OpenAPI document gives the same schema.
 */
import Ajv from "ajv";
import { MESSAGES_KEYWORD, schemaProblems } from "../definition/schema-problems";
import { InvalidRequestError, type Problem } from "../errors";
import { MAX_OUTPUT_BYTES } from "./attempt";
import type { AttemptResult } from "./settle";

export type CallbackBody = { output: unknown } | { error: { code?: string; message: string } };

/** The body's JSON Schema (its `problemMessages` are the validator's own, not JSON Schema). */
export const CALLBACK_BODY_SCHEMA = {
  type: "object",
  additionalProperties: false,
  properties: {
    output: { description: `The task's output (any JSON, at most ${MAX_OUTPUT_BYTES / 1024} KB).` },
    error: {
      type: "object",
      additionalProperties: false,
      required: ["message"],
      properties: {
        code: {
          type: "string",
          pattern: "^[A-Za-z][A-Za-z0-9_.-]{0,63}$",
          [MESSAGES_KEYWORD]: { pattern: "must be a letter, then up to 63 letters, digits, `_`, `.` or `-`" },
        },
        message: {
          type: "string",
          minLength: 1,
          maxLength: 4096,
          [MESSAGES_KEYWORD]: {
            minLength: "must be a non-empty string",
            maxLength: "must be at most 4096 characters",
          },
        },
      },
      [MESSAGES_KEYWORD]: { type: "must be an object `{code?, message}`" },
    },
  },
  // exactly one of the two properties
  minProperties: 1,
  maxProperties: 1,
  [MESSAGES_KEYWORD]: {
    type: "must be a JSON object with `output` or `error`",
    minProperties: "must have exactly one of `output` and `error`",
    maxProperties: "must have exactly one of `output` and `error`",
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
ajv.addKeyword({ keyword: MESSAGES_KEYWORD, schemaType: "object" });
const matchesSchema = ajv.compile(CALLBACK_BODY_SCHEMA);

/** Checks a callback body against its schema, and its output against the size an output may have. */
export function checkCallbackBody(body: unknown): CallbackBody {
  const problems: Problem[] = matchesSchema(body) ? [] : schemaProblems(matchesSchema.errors, body);
  const record = body as Record<string, unknown>;
  if (problems.length === 0 && "output" in record) {
    const size = Buffer.byteLength(JSON.stringify(record.output ?? null));
    if (size > MAX_OUTPUT_BYTES)
      problems.push({ path: "output", message: `is ${size} bytes, over the limit of ${MAX_OUTPUT_BYTES}` });
  }
  if (problems.length > 0) throw new InvalidRequestError("invalid callback body", problems);
  return "output" in record
    ? { output: record.output ?? null }
    : { error: record.error as { code?: string; message: string } };
}

/** A callback's `{error}` fails the task without retry: the caller decided. */
export function resultOf(body: CallbackBody): AttemptResult {
  if ("output" in body) return { ok: true, output: body.output };
  return {
    ok: false,
    error: { code: body.error.code ?? "CallbackFailed", message: body.error.message },
    retryable: false,
  };
}
