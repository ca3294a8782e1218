/**
 * Actions that count their own invocations, so that over-execution is measured by the action
 * itself and not by the engine's records: `bench.sleep` is `core.sleep` with a counter in front,
 * `bench.noop` is `core.noop` with one. Counts are per idempotency key (`{runId}/{task}/{item}`).
 */
import "../lib/actions/core";
import { type Action, getAction, registerAction } from "../lib/actions/registry";

export class ExecutionCounter {
  readonly byKey = new Map<string, number>();
  total = 0;
  /** `Date.now()` at the end of the last invocation. */
  lastEndedAt = 0;

  record(key: string): void {
    this.total++;
    this.byKey.set(key, (this.byKey.get(key) ?? 0) + 1);
  }

  /** Invocations of keys beginning with `prefix` (a run id, say). */
  countFor(prefix: string): number {
    let count = 0;
    for (const [key, n] of this.byKey) if (key.startsWith(prefix)) count += n;
    return count;
  }

  reset(): void {
    this.byKey.clear();
    this.total = 0;
    this.lastEndedAt = 0;
  }
}

export const executions = new ExecutionCounter();

function counted(name: string): Action {
  const action = getAction(name);
  if (!action) throw new Error(`${name} is not registered`);
  return async (input, context) => {
    executions.record(context.idempotencyKey);
    try {
      return await action(input, context);
    } finally {
      executions.lastEndedAt = Date.now();
    }
  };
}

registerAction("bench.sleep", counted("core.sleep"));
registerAction("bench.noop", counted("core.noop"));
/** Outputs `{data}` of `input.bytes` bytes: the cost of a large output. */
registerAction("bench.large", async (input, context) => {
  executions.record(context.idempotencyKey);
  return { data: "x".repeat(Number((input as { bytes?: number } | null)?.bytes ?? 0)) };
});
