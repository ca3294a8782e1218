import type { ChaosOptions } from "../../infra/local/chaos";
import type { LocalStackOptions } from "../../infra/local/stack";

/**
 * The local stack for a chaos check: the faults, and short visibility timeouts so that a message
 * whose handler crashed comes back in seconds rather than the 15 minutes of the deployed queues.
 */
export function chaosStackOptions(chaos: ChaosOptions | undefined): LocalStackOptions {
  // every injected crash is logged as an error by the handlers; the checker reports them instead
  process.env.POWERTOOLS_LOG_LEVEL ??= "CRITICAL";
  return {
    chaos: chaos ?? null,
    queueAttributeOverrides: { VisibilityTimeout: "3" },
    scheduleIntervalMs: 2000,
    pollerConcurrency: { worker: 16, advance: 4 },
  };
}
