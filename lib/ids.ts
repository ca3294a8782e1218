import { randomUUID } from "node:crypto";

let source: () => string = randomUUID;

/** A new run id: a random UUID. */
export function newRunId(): string {
  return source();
}

/**
 * For the deterministic simulation: run ids from `next` (a seeded source), so that a schedule,
 * which depends on them through sweep shards and key order, replays exactly. Returns a function
 * that puts the random source back.
 */
export function useIdSource(next: () => string): () => void {
  const previous = source;
  source = next;
  return () => {
    source = previous;
  };
}
