/**
 * Callback task tokens: unguessable and self-locating. A token is the base64url JSON of the
 * execution's key and attempt, a dot, and a random 128-bit secret in hex. The execution item stores
 * the whole token, so a token is found by its key (no extra table item) and only counts when it is
 * exactly the stored one.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { TASK_NAME_PATTERN } from "../definition/schema";
import type { TaskRecord } from "./task-record";

export interface CallbackKey {
  runId: string;
  task: string;
  /** The with-items index; absent for a plain task. */
  item?: number;
  /** The attempt the token was issued for: a retry issues a new token. */
  attempt: number;
}

const TOKEN_PATTERN = /^([A-Za-z0-9_-]{1,1024})\.([0-9a-f]{32})$/;
const taskName = new RegExp(TASK_NAME_PATTERN);

export function encodeToken(key: CallbackKey, secret = randomBytes(16).toString("hex")): string {
  const { runId, task, item, attempt } = key;
  const json = JSON.stringify(item === undefined ? { runId, task, attempt } : { runId, task, item, attempt });
  return `${Buffer.from(json).toString("base64url")}.${secret}`;
}

/** The key a token names, or undefined when it is not a well-formed token. */
export function decodeToken(token: string): CallbackKey | undefined {
  const match = TOKEN_PATTERN.exec(token);
  if (!match) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(match[1] as string, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const { runId, task, item, attempt, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return undefined;
  if (typeof runId !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(runId)) return undefined;
  if (typeof task !== "string" || !taskName.test(task)) return undefined;
  if (item !== undefined && !(Number.isSafeInteger(item) && (item as number) >= 0)) return undefined;
  if (!(Number.isSafeInteger(attempt) && (attempt as number) >= 1)) return undefined;
  return item === undefined
    ? { runId, task, attempt: attempt as number }
    : { runId, task, item: item as number, attempt: attempt as number };
}

/** Whether `token` is the token stored on the execution (compared in constant time). */
export function sameToken(stored: string | undefined, token: string): boolean {
  if (stored === undefined) return false;
  const a = Buffer.from(stored);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Whether the execution is a callback waiting for its token: running, with the token of its
 * current attempt (a new attempt claimed but not yet suspended still carries the old token).
 */
export function isSuspended(record: TaskRecord): boolean {
  if (record.status !== "running" || record.callbackToken === undefined) return false;
  return decodeToken(record.callbackToken)?.attempt === record.attempt;
}
