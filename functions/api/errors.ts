import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { ContentionError, OnceflowError } from "../../lib/errors";

/** The one place where error codes become HTTP status codes. */
export const STATUS_BY_CODE: Record<string, number> = {
  MalformedBody: 400,
  InvalidRequest: 400,
  InvalidQuery: 400,
  InvalidWorkflow: 400,
  InvalidInput: 400,
  InputTooLarge: 400,
  WorkflowNotFound: 404,
  RunNotFound: 404,
  TaskNotFound: 404,
  CallbackNotFound: 404,
  RouteNotFound: 404,
  AssetNotFound: 404,
  MethodNotAllowed: 405,
  IdempotencyKeyReused: 409,
  RunAlreadyStarted: 409,
  RunAlreadyEnded: 409,
  ConcurrencyKeyBusy: 409,
  RunNotRedrivable: 409,
  CallbackAlreadyCompleted: 409,
  Contention: 503,
};

/**
 * `Retry-After` of a 503 `Contention`, in seconds: the writers it lost to have spread out by then
 * (its own tries waited about 2 s in all), and a client should not come back in step with them.
 */
export const CONTENTION_RETRY_AFTER_SECONDS = 1;

export function json(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  };
}

/**
 * `{"error": {code, message, details}}` for a known error; anything else is a 500 with no detail
 * (the stack trace goes to the log, never to the client).
 */
export function errorResponse(error: unknown): APIGatewayProxyStructuredResultV2 {
  if (error instanceof OnceflowError && STATUS_BY_CODE[error.code]) {
    const body: Record<string, unknown> = { code: error.code, message: error.message, ...error.fields };
    if (error.details) body.details = error.details;
    const headers: Record<string, string> =
      error instanceof MethodNotAllowedError
        ? { allow: error.allowed.join(", ") }
        : error instanceof ContentionError
          ? { "retry-after": String(CONTENTION_RETRY_AFTER_SECONDS) }
          : {};
    return json(STATUS_BY_CODE[error.code] as number, { error: body }, headers);
  }
  return json(500, { error: { code: "InternalError", message: "internal error" } });
}

export class RouteNotFoundError extends OnceflowError {
  constructor(method: string, path: string) {
    super("RouteNotFound", `no route for ${method} ${path}`);
  }
}

export class MethodNotAllowedError extends OnceflowError {
  readonly allowed: string[];
  constructor(method: string, path: string, allowed: string[]) {
    super("MethodNotAllowed", `${method} is not allowed on ${path} (allowed: ${allowed.join(", ")})`, {
      fields: { allowed },
    });
    this.allowed = allowed;
  }
}
