import { ActionError } from "../errors";
import type { ActionContext } from "./registry";

interface HttpInput {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: unknown;
  timeoutSeconds?: number;
}

function parseInput(input: unknown): HttpInput {
  const value = (input ?? {}) as Partial<HttpInput>;
  if (typeof value.url !== "string" || !/^https?:\/\//.test(value.url)) {
    throw new ActionError("InvalidActionInput", "core.http needs an http(s) `url`");
  }
  if (value.headers !== undefined && (typeof value.headers !== "object" || value.headers === null)) {
    throw new ActionError("InvalidActionInput", "core.http `headers` must be an object");
  }
  return value as HttpInput;
}

/**
 * `core.http`: one HTTP request per attempt, carrying the execution's `Idempotency-Key` and
 * `X-Onceflow-Attempt`. Non-2xx fails the attempt; 429, 5xx and network errors are retryable.
 */
export async function httpAction(input: unknown, context: ActionContext): Promise<unknown> {
  const { url, method = "POST", headers = {}, body, timeoutSeconds } = parseInput(input);
  const signals = [context.signal];
  if (timeoutSeconds) signals.push(AbortSignal.timeout(timeoutSeconds * 1000));
  const hasBody = body !== undefined && method !== "GET" && method !== "HEAD";
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: {
        ...(hasBody && typeof body !== "string" ? { "content-type": "application/json" } : {}),
        ...headers,
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
