import type { ChaosOptions } from "../../infra/local/chaos";
import type { LocalStackOptions } from "../../infra/local/stack";

/**
 * The local stack for a chaos check, with its faults. By default with short visibility timeouts
 * and a sweep every 2 s, so that many runs get through many faults quickly. `deployed`: exactly as
 * serverless.yml declares it (15 and 6 minute visibility timeouts, the sweeper's ticks every 5 s
 * and its schedule every minute, the event sources' concurrency), to measure what a crash costs
 * on the configuration users run.
 */
export function chaosStackOptions(
  chaos: ChaosOptions | undefined,
  { deployed = false }: { deployed?: boolean } = {},
): LocalStackOptions {
  // every injected crash is logged as an error by the handlers; the checker reports them instead
  process.env.POWERTOOLS_LOG_LEVEL ??= "CRITICAL";
  if (deployed) return { chaos: chaos ?? null };
  return {
    chaos: chaos ?? null,
    queueAttributeOverrides: { VisibilityTimeout: "3" },
    scheduleIntervalMs: 2000,
    environment: { SWEEP_EVERY_SECONDS: "2" },
    pollerConcurrency: { worker: 16, advance: 4 },
  };
}
