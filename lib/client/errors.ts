import type { ApiErrorBody, ErrorCode, Problem } from "./types";

/**
 * An error answer of the API (`code`, HTTP `status`, `message`, `details` and the fields a 409
 * carries, like `runId` and `status`), or one of the client's own: `NetworkError` (status 0, no
 * answer), `UnexpectedResponse` (an answer that is not the API's), `WaitTimedOut`.
 */
export class OnceflowError extends Error {
  /** The API's stable code: what to branch on. */
  readonly code: ErrorCode | (string & {});
  /** The HTTP status; 0 when there was no answer. */
  readonly status: number;
  /** Every problem (e.g. each `{path, message}` of an invalid definition), when the API gave them. */
  readonly details?: unknown[];
  /** The error's other fields (a 409's `runId`, `status`, `holder`...; a 405's `allowed`). */
  readonly fields: Record<string, unknown>;
  /** The request that got this answer, e.g. `POST /runs/abc/cancel`. */
  readonly request?: string;

  constructor(
    code: ErrorCode | (string & {}),
    status: number,
    message: string,
    options: {
      details?: unknown[];
      fields?: Record<string, unknown>;
      request?: string;
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "OnceflowError";
    this.code = code;
    this.status = status;
    this.details = options.details;
    this.fields = options.fields ?? {};
    this.request = options.request;
  }

  /** The details that are `{path, message}` problems (an invalid definition's, input's or query's). */
  get problems(): Problem[] {
    return (this.details ?? []).filter(
      (d): d is Problem =>
        typeof d === "object" &&
        d !== null &&
        typeof (d as Problem).path === "string" &&
        typeof (d as Problem).message === "string",
    );
  }
}

/** Whether `error` is an OnceflowError (with one of `codes`, when given). */
export function isOnceflowError(
  error: unknown,
  ...codes: (ErrorCode | (string & {}))[]
): error is OnceflowError {
  return error instanceof OnceflowError && (codes.length === 0 || codes.includes(error.code));
}

function isApiErrorBody(body: unknown): body is ApiErrorBody {
  if (typeof body !== "object" || body === null) return false;
  const error = (body as { error?: unknown }).error;
  return (
    typeof error === "object" &&
    error !== null &&
    typeof (error as { code?: unknown }).code === "string" &&
    typeof (error as { message?: unknown }).message === "string"
  );
}

/**
 * The error for an answer with a status of 400 or more: the API's own when its body is the API's
 * error body, else `UnexpectedResponse` with what the body says (API Gateway's
 * `{"message": "Forbidden"}`, a proxy's page...).
 */
export function errorFromResponse(status: number, text: string, request?: string): OnceflowError {
  let body: unknown;
  try {
    body = text === "" ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (isApiErrorBody(body)) {
    const { code, message, details, ...fields } = body.error;
    return new OnceflowError(code, status, message, {
      details: Array.isArray(details) ? details : undefined,
      fields,
      request,
    });
  }
  const said =
    typeof body === "object" && body !== null && typeof (body as { message?: unknown }).message === "string"
      ? (body as { message: string }).message
      : text.trim().slice(0, 200);
  return new OnceflowError(
    "UnexpectedResponse",
    status,
    `HTTP ${status}${said ? `: ${said}` : ""}${request ? ` (${request})` : ""}`,
    { request },
  );
}
