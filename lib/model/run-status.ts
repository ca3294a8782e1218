/**
 * A run's statuses, in one module with no imports, so that the engine, the API and the typed client
 * (which must load in a browser, without the AWS SDK) share them.
 */
export const RUN_STATUSES = ["pending", "waiting", "running", "succeeded", "failed", "cancelled"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** How a run ends (`failed` may be redriven). */
export const TERMINAL_RUN_STATUSES = [
  "succeeded",
  "failed",
  "cancelled",
] as const satisfies readonly RunStatus[];
export type TerminalRunStatus = (typeof TERMINAL_RUN_STATUSES)[number];

export const isTerminal = (status: string): status is TerminalRunStatus =>
  (TERMINAL_RUN_STATUSES as readonly string[]).includes(status);
