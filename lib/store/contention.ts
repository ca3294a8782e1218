/**
 * The one optimistic-retry loop of the engine: read, decide, write conditionally; a write that lost
 * its race to another writer (the item moved since it was read) reads again and tries again, after
 * the store's jittered backoff, so that writers that collided spread out instead of colliding
 * again in step. When every try lost, the caller either gets a `ContentionError` (the default: the
 * API answers it with 503 and `Retry-After`, a queue handler leaves its message to come back), or,
 * for a level-triggered step that a later call repairs, its `giveUp` answer.
 */
import { ContentionError } from "../errors";
import { backoff } from "./backoff";

/**
 * Tries an optimistic step makes unless its caller says why it needs another number. Ten: with the
 * backoff between them (20 ms doubling, capped at 1 s, full jitter) ten tries wait at most about
 * 4.3 s in all (about 2 s on average), well inside the API's 29 s and any handler's timeout; a race
 * lost ten times in a row with the writers spread out like that is contention that one request
 * waiting longer does not clear, and the caller is better told (503, or its message retried later).
 * (Before this helper the loops tried 5, 9, 10, 20 or 30 times, most of them 10.)
 */
export const CONTENTION_TRIES = 10;

/** An attempt's answer that it lost the race: the item moved since it was read; read again and try again. */
export class LostRace {
  /** What it lost to (a refused write's reasons, say), for the `ContentionError` after the last try. */
  readonly cause?: unknown;
  constructor(cause?: unknown) {
    this.cause = cause;
  }
}

/** `return lostRace(outcome.reasons)` from an attempt that lost the race. */
export const lostRace = (cause?: unknown): LostRace => new LostRace(cause);

export interface ContentionOptions<G> {
  /** How many tries in all (at least 1); `CONTENTION_TRIES` unless the call site says why not. */
  tries?: number;
  /**
   * What to answer when the last try lost too, instead of throwing `ContentionError`: for a step
   * that may stop quietly because a later call repairs what it left (it is level-triggered).
   */
  giveUp?: () => G;
}

/**
 * Runs `attempt` until it answers something other than a `LostRace`, and returns that answer.
 * Before try n (n ≥ 1, 0-based) it waits `backoff(n - 1)`. `attempt` is given the 0-based number
 * of its try. After `tries` lost races: `giveUp()` if given, else throws `ContentionError` (code
 * `Contention`) with `label` in its message and the last race's `cause`.
 */
export async function retryOnContention<T, G = never>(
  label: string,
  attempt: (tries: number) => Promise<T | LostRace>,
  options: ContentionOptions<G> = {},
): Promise<T | G> {
  const tries = options.tries ?? CONTENTION_TRIES;
  if (!Number.isInteger(tries) || tries < 1) throw new Error(`retryOnContention: ${tries} tries`);
  let lost: LostRace | undefined;
  for (let n = 0; n < tries; n++) {
    if (n > 0) await backoff(n - 1);
    const answer = await attempt(n);
    if (!(answer instanceof LostRace)) return answer;
    lost = answer;
  }
  if (options.giveUp) return options.giveUp();
  throw new ContentionError(label, tries, lost?.cause);
}
