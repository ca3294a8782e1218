/** What an action gets besides its input. */
export interface ActionContext {
  runId: string;
  task: string;
  /** The with-items index, or undefined for a plain task. */
  item?: number;
  /** 1 for the first attempt. */
  attempt: number;
  /** `{runId}/{task}/{item}` (item `-` when none): the same on every attempt of this execution. */
  idempotencyKey: string;
  /**
   * Aborted when the attempt times out (`TaskTimedOut`, after the task's `timeoutSeconds`) or its
   * worker loses the lease on the execution (`LeaseLost`: a heartbeat found another attempt or
   * worker holding it); its `reason` is that error. Stop the work when it fires: the attempt has
   * already failed with that error, and whatever the action returns later is ignored.
   */
  signal: AbortSignal;
}

/**
 * An action: a TypeScript function registered by name (`registerAction`, or `defineAction` for one
 * whose input is validated against a JSON Schema). Its return value is the task output (JSON).
 * Throw an `ActionError` with `retryable` to choose whether the task's retry policy applies; any
 * other error counts as retryable.
 */
export type Action = (input: unknown, context: ActionContext) => Promise<unknown> | unknown;

const actions = new Map<string, Action>();

export function registerAction(name: string, action: Action): void {
  if (!/^[a-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$/.test(name)) {
    throw new Error(`action name '${name}' must look like 'namespace.name'`);
  }
  if (actions.has(name) && actions.get(name) !== action)
    throw new Error(`action '${name}' is already registered`);
  actions.set(name, action);
}

export function getAction(name: string): Action | undefined {
  return actions.get(name);
}

export function actionNames(): ReadonlySet<string> {
  return new Set(actions.keys());
}
