import { ActionError } from "../errors";
import type { SchemaType } from "./define";
import type { ActionContext } from "./registry";

/** `core.http`'s input, validated before each attempt (a mismatch is `InvalidActionInput`, not retried). */
export const HTTP_INPUT = {
  type: "object",
  required: ["url"],
  properties: {
    url: { type: "string", pattern: "^https?://" },
    method: { type: "string" },
    headers: { type: "object", additionalProperties: { type: ["string", "number", "boolean"] } },
    body: {},
    timeoutSeconds: { type: "number", minimum: 0 },
  },
} as const;

/**
 * `core.http`: one HTTP request per attempt, carrying the execution's `Idempotency-Key` and
 * `X-Onceflow-Attempt`. Non-2xx fails the attempt; 429, 5xx and network errors are retryable.
 */
export async function httpAction(
  input: SchemaType<typeof HTTP_INPUT>,
  context: ActionContext,
): Promise<{ status: number; body: unknown }> {
  const { url, method = "POST", headers = {}, body, timeoutSeconds } = input;
  const signals = [context.signal];
  if (timeoutSeconds) signals.push(AbortSignal.timeout(timeoutSeconds * 1000));
  const hasBody = body !== undefined && method !== "GET" && method !== "HEAD";
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: {
        ...(hasBody && typeof body !== "string" ? { "content-type": "application/json" } : {}),
        ...Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, String(value)])),
        "Idempotency-Key": context.idempotencyKey,
        "X-Onceflow-Attempt": String(context.attempt),
      },
      body: hasBody ? (typeof body === "string" ? body : JSON.stringify(body)) : undefined,
      signal: AbortSignal.any(signals),
    });
  } catch (error) {
    throw new ActionError("HttpNetworkError", `${method} ${url} failed: ${(error as Error).message}`, {
      retryable: true,
      cause: error,
    });
  }
  const text = await response.text();
  let responseBody: unknown = text;
  if ((response.headers.get("content-type") ?? "").includes("json") && text) {
    try {
      responseBody = JSON.parse(text);
    } catch {
      // not JSON after all: keep the text
    }
  }
  if (!response.ok) {
    const retryable = response.status === 429 || response.status >= 500;
    throw new ActionError("HttpStatusError", `${method} ${url} answered ${response.status}`, { retryable });
  }
  return { status: response.status, body: responseBody };
}
