/**
 * The pause before trying a write again that lost a race (a transaction conflict, a limit's list
 * that moved): exponential with full jitter, so that writers that collided spread out instead of
 * colliding again in step.
 */
let sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits a random time in [0, min(capMs, baseMs * 2^attempt)) before retry `attempt` (0-based). */
export function backoff(attempt: number, baseMs = 20, capMs = 1000): Promise<void> {
  return sleep(Math.random() * Math.min(capMs, baseMs * 2 ** attempt));
}

/**
 * For the deterministic simulation: its virtual clock decides when things happen, so a backoff
 * there takes no real time. Returns a function that puts the real sleep back.
 */
export function useSleep(next: (ms: number) => Promise<void>): () => void {
  const previous = sleep;
  sleep = next;
  return () => {
    sleep = previous;
  };
}
