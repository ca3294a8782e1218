/** The workflow definition format of ../shared/DESIGN.md, after validation. */
export type When = "succeeded" | "failed" | "always";

export interface Transition {
  when: When;
  do: string[];
}

export interface RetryPolicy {
  maxAttempts: number;
  intervalSeconds: number;
  backoffRate: number;
  maxIntervalSeconds?: number;
}

export interface TaskDefinition {
  action: string;
  /** A template: any JSON value; strings may hold `{% jsonata %}` expressions. */
  input?: unknown;
  next?: Transition[];
  /** `all`: wait for every task that points at this one. Default: start on the first transition that fires. */
  join?: "all";
  withItems?: unknown;
  concurrency?: number;
  toleratedFailurePercentage?: number;
  retry?: RetryPolicy;
  timeoutSeconds?: number;
  /** `core.callback` only: the waiting task times out unless a heartbeat comes this often. */
  heartbeatSeconds?: number;
}

export interface WorkflowDefinition {
  name: string;
  description?: string;
  concurrencyKey?: string;
  /** What a run whose key is held gets: `queue` (wait, started in creation order) or `reject` (409). */
  onConcurrencyConflict?: "queue" | "reject";
  /** JSON Schema for the run input. */
  input?: Record<string, unknown>;
  /** Caps on what runs at once across all runs of the workflow (F4). */
  limits?: Limits;
  tasks: Record<string, TaskDefinition>;
  /** A template evaluated when the run succeeds. */
  output?: unknown;
  timeoutSeconds?: number;
}

export interface Limits {
  /**
   * At most this many executions of the workflow's runs are running at once, counting those of
   * actions that have no limit of their own in `actions`.
   */
  maxRunning?: number;
  /** Per action: at most `maxRunning` executions of it are running at once, across all runs. */
  actions?: Record<string, { maxRunning: number }>;
}

/** An edge of the task graph: `from` finishing with an outcome matching `when` starts `to`. */
export interface Edge {
  from: string;
  to: string;
  when: When;
}
