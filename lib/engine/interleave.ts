/**
 * Named interleaving points: places in the engine where a test can hold a handler, to force the
 * exact race it wants (two workers about to claim the same execution, two countdowns that both
 * read the same counters). Outside tests nothing is registered, and a point costs one Map lookup.
 * (The local stack's chaos also listens at `work:continue`, to know which executions a worker
 * invocation worked on besides its batch's.)
 */
export type InterleavingPoint =
  | "claim:before-write"
  | "claim:before-park"
  | "cancel:before-write"
  | "countdown:before-commit"
  | "advance:before-dispatch"
  | "settle:before-write"
  | "give-back:after-read"
  | "redrive:before-commit"
  | "redrive:after-commit"
  | "end-run:before-write"
  | "end-run:after-write"
  | "work:continue";

type Hook = (detail: Record<string, unknown>) => Promise<void> | void;

const hooks = new Map<InterleavingPoint, Hook>();

export async function point(name: InterleavingPoint, detail: Record<string, unknown> = {}): Promise<void> {
  await hooks.get(name)?.(detail);
}

/** For tests: run `hook` whenever a handler reaches `name` (until the returned function is called). */
export function onPoint(name: InterleavingPoint, hook: Hook): () => void {
  hooks.set(name, hook);
  return () => {
    if (hooks.get(name) === hook) hooks.delete(name);
  };
}

/**
 * For tests: hold the first `count` handlers that reach `name` until all of them are there, then
 * let them all go at the same instant. Resolves once they were released.
 */
export function barrier(name: InterleavingPoint, count: number): Promise<void> {
  let waiting: (() => void)[] = [];
  return new Promise((released) => {
    const remove = onPoint(name, () => {
      if (waiting.length >= count) return;
      return new Promise<void>((resume) => {
        waiting.push(resume);
        if (waiting.length === count) {
          remove();
          for (const go of waiting) go();
          waiting = [];
          released();
        }
      });
    });
  });
}
