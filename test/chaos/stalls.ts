/**
 * What each injected crash cost: the time from the crash to the next transition of the execution
 * it hit. An execution not settled at the crash: its own next event (claimed again, retried,
 * settled). One already settled (the crash lost its completion, or hit the advance that counted
 * it): the next event downstream of it (its with-items task's, a successor's, the run's end), an
 * upper bound, for that may also wait on the item's siblings. A crash after which nothing of its
 * run was left to happen (the run had ended, or a duplicate delivery did it all first) cost nothing
 * and is not counted; nor are crashes that hit no execution (the API's, whose client retries with
 * its Idempotency-Key, and the sweeper's).
 */
import type { ChaosReport } from "../../infra/local/chaos";
import type { RunEvent } from "../../lib/store/events";

export interface Stall {
  /** `fn when command`, e.g. `worker after UpdateItem`. */
  point: string;
  /** `{runId}/{task}/{item or -}` */
  key: string;
  ms: number;
}

const SETTLED = new Set(["TaskSucceeded", "TaskFailed", "TaskCancelled"]);
const ENDED = new Set(["RunSucceeded", "RunFailed", "RunCancelled"]);

export async function stallsOf(
  crashes: ChaosReport["crashes"],
  eventsOf: (runId: string) => Promise<RunEvent[]>,
): Promise<Stall[]> {
  const stalls: Stall[] = [];
  for (const crash of crashes) {
    for (const key of new Set(crash.keys)) {
      const [runId, task, item] = key.split("/") as [string, string, string];
      const events = await eventsOf(runId);
      const time = (e: RunEvent) => Date.parse(e.at);
      const before = events.filter((e) => time(e) <= crash.at);
      if (before.some((e) => ENDED.has(e.type))) continue;
      const own = (e: RunEvent) => e.task === task && String(e.item ?? "-") === item;
      const settled = before.some((e) => own(e) && SETTLED.has(e.type));
      const next = events.find(
        (e) => time(e) > crash.at && (settled ? e.task !== task || e.item === undefined : own(e)),
      );
      if (next)
        stalls.push({ point: `${crash.fn} ${crash.when} ${crash.command}`, key, ms: time(next) - crash.at });
    }
  }
  return stalls;
}

/** The p-th percentile (0-100) of `values`, nearest rank; 0 for none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}
