/**
 * One error hierarchy for the engine. Every error has a stable `code`; the HTTP API maps codes to
 * status codes in one place (functions/api/errors.ts). `details` carries structured problems
 * (for example every problem of an invalid definition, each with its path).
 */
export interface Problem {
  path: string;
  message: string;
}

export class OnceflowError extends Error {
  readonly code: string;
  readonly details?: unknown[];
  /** Fields a client needs besides code and message (e.g. the `status` a 409 found). */
  readonly fields?: Record<string, unknown>;
  constructor(
    code: string,
    message: string,
    options?: { details?: unknown[]; fields?: Record<string, unknown>; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options?.details;
    this.fields = options?.fields;
  }
}

/** The request body could not be parsed (malformed JSON or YAML). */
export class MalformedBodyError extends OnceflowError {
  constructor(message: string, cause?: unknown) {
    super("MalformedBody", message, { cause });
  }
}

/** A request is well-formed but its content is invalid (missing field, wrong type...). */
export class InvalidRequestError extends OnceflowError {
  constructor(message: string, details?: Problem[]) {
    super("InvalidRequest", message, { details });
  }
}

/** A query string parameter is unknown or has a bad value (a limit out of range, a cursor not ours...). */
export class InvalidQueryError extends OnceflowError {
  constructor(problems: Problem[]) {
    super("InvalidQuery", problems.map((p) => `${p.path}: ${p.message}`).join("; "), { details: problems });
  }
}

export class InvalidWorkflowError extends OnceflowError {
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    super("InvalidWorkflow", `workflow definition has ${problems.length} problem(s)`, { details: problems });
    this.problems = problems;
  }
}

export class InvalidInputError extends OnceflowError {
  constructor(message: string, details?: Problem[]) {
    super("InvalidInput", message, { details });
  }
}

/** A run input over the limit (DESIGN.md: 400). */
export class InputTooLargeError extends OnceflowError {
  constructor(limitBytes: number) {
    super("InputTooLarge", `the run input is over the limit of ${limitBytes} bytes`);
  }
}

export class WorkflowNotFoundError extends OnceflowError {
  constructor(name: string) {
    super("WorkflowNotFound", `workflow '${name}' does not exist`);
  }
}

export class RunNotFoundError extends OnceflowError {
  constructor(runId: string) {
    super("RunNotFound", `run '${runId}' does not exist`);
  }
}

/** `GET /runs/{runId}/tasks/{task}`: the run has no such task (not in its workflow, or not started yet), or no such item. */
export class TaskNotFoundError extends OnceflowError {
  constructor(runId: string, task: string, item?: number) {
    super(
      "TaskNotFound",
      item === undefined
        ? `run '${runId}' has no task '${task}' (not in its workflow, or not started yet)`
        : `task '${task}' of run '${runId}' has no item ${item}`,
    );
  }
}

export class IdempotencyKeyReusedError extends OnceflowError {
  readonly runId: string;
  constructor(key: string, runId: string) {
    super("IdempotencyKeyReused", `Idempotency-Key '${key}' was used for run ${runId} with another input`, {
      fields: { runId },
    });
    this.runId = runId;
  }
}

/** A trigger lost the race (or came late): the run is no longer pending. */
export class RunAlreadyStartedError extends OnceflowError {
  readonly status: string;
  constructor(runId: string, status: string) {
    super("RunAlreadyStarted", `run ${runId} is ${status}, not pending`, { fields: { runId, status } });
    this.status = status;
  }
}

export class RunAlreadyEndedError extends OnceflowError {
  readonly status: string;
  constructor(runId: string, status: string) {
    super("RunAlreadyEnded", `run ${runId} has already ended (${status})`, { fields: { runId, status } });
    this.status = status;
  }
}

/** A redrive of a run that is not `failed`, or whose last actions are still winding down. */
export class RunNotRedrivableError extends OnceflowError {
  constructor(runId: string, status: string, reason?: string) {
    super(
      "RunNotRedrivable",
      reason ? `run ${runId} cannot be redriven now: ${reason}` : `run ${runId} is ${status}, not failed`,
      {
        fields: { runId, status },
      },
    );
  }
}

/** `onConcurrencyConflict: reject`: another run holds the concurrency key. */
export class ConcurrencyKeyBusyError extends OnceflowError {
  constructor(key: string, holder: string) {
    super("ConcurrencyKeyBusy", `run ${holder} holds the concurrency key '${key}'`, {
      fields: { concurrencyKey: key, holder },
    });
  }
}

/**
 * An optimistic write lost its race on every try (lib/store/contention.ts): other writers kept
 * moving the item it read, and the write it tried was not made. The same request may well succeed
 * shortly: the API answers 503 with `Retry-After`, and a queue message is delivered again.
 */
export class ContentionError extends OnceflowError {
  /** What was being done (`end run r1`, `cancel run r1`...). */
  readonly label: string;
  readonly tries: number;
  constructor(label: string, tries: number, cause?: unknown) {
    const message = `could not ${label}: lost the race ${tries} times in a row (contention); try again shortly`;
    super("Contention", message, { cause });
    this.label = label;
    this.tries = tries;
  }
}

/** A JSONata expression failed to compile or evaluate. */
export class ExpressionError extends OnceflowError {
  constructor(message: string, cause?: unknown) {
    super("ExpressionError", message, { cause });
  }
}

/** An action failed. `retryable` decides whether the task's retry policy applies. */
export class ActionError extends OnceflowError {
  readonly retryable: boolean;
  constructor(
    code: string,
    message: string,
    options?: { retryable?: boolean; cause?: unknown; details?: unknown[] },
  ) {
    super(code, message, { cause: options?.cause, details: options?.details });
    this.retryable = options?.retryable ?? false;
  }
}

/**
 * The input of a `defineAction` action does not match its input schema; its `run` was not called.
 * Not retried: the same input would fail again. The message names each problem's path
 * (`input.url must be a string`); `details` has them all.
 */
export class InvalidActionInputError extends ActionError {
  readonly problems: Problem[];
  constructor(action: string, summary: string, problems: Problem[]) {
    super("InvalidActionInput", `the input of ${action} does not match its schema: ${summary}`, {
      details: problems,
    });
    this.problems = problems;
  }
}

/** The value a `defineAction` action returned does not match its output schema. Not retried. */
export class InvalidActionOutputError extends ActionError {
  readonly problems: Problem[];
  constructor(action: string, summary: string, problems: Problem[]) {
    super("InvalidActionOutput", `the output of ${action} does not match its schema: ${summary}`, {
      details: problems,
    });
    this.problems = problems;
  }
}

/** `POST /callbacks/{token}`: a malformed or unknown token, or one that expired (timed out, retried, cancelled). */
export class CallbackNotFoundError extends OnceflowError {
  constructor(message = "no callback is waiting for this token") {
    super("CallbackNotFound", message);
  }
}

/** The callback's task was already completed with another body (or a heartbeat came after it). */
export class CallbackAlreadyCompletedError extends OnceflowError {
  constructor(message: string, fields: Record<string, unknown>) {
    super("CallbackAlreadyCompleted", message, { fields });
  }
}
