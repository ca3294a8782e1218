/**
 * The console talks to the API with the typed client (lib/client), as the CLI does. The API is
 * the page's parent path (`/console/` → `/`), so the console works under any base path.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { createClient, isOnceflowError } from "../../lib/client";

export const client = createClient({ baseUrl: new URL("..", window.location.href).href });

/** `409 RunAlreadyEnded: run … has already ended (succeeded)`, or a network error's message. */
export function describeError(error: unknown): string {
  if (isOnceflowError(error)) {
    const problems = error.problems.map((p) => `\n  ${p.path}: ${p.message}`).join("");
    return `${error.status ? `${error.status} ` : ""}${error.code}: ${error.message}${problems}`;
  }
  return error instanceof Error ? error.message : String(error);
}

export interface Live<T> {
  data?: T;
  error?: string;
  /** Fetches again now (after an action), and polls quickly again. */
  refresh(): void;
}

export interface LiveOptions<T> {
  /** Whether what is shown still changes (a run not ended): polled from FAST_MS up; else never again. */
  active(data: T): boolean;
  /** Polls even when nothing is active, at the slowest pace (a list, where new runs appear). */
  always?: boolean;
  /** The shortest pause between two polls (default 1 s): for large answers (a long history). */
  minMs?: number;
  /** Shows the last answer while the first of a new `key` loads (the same thing, asked again). */
  keep?: boolean;
}

const FAST_MS = 1000;
const SLOW_MS = 10_000;
const ERROR_MS = 30_000;

/**
 * Polls `load` with back-off: every second while its answer changes, then half as often again at
 * each unchanged answer up to 10 s; after an error up to 30 s. It stops while the tab is hidden, and
 * when nothing is active any more (unless `always`). `key` changes start over.
 */
export function useLive<T>(key: string, load: () => Promise<T>, options: LiveOptions<T>): Live<T> {
  const [state, setState] = useState<{ key: string; data?: T; error?: string }>({ key });
  const kick = useRef<() => void>(() => {});
  const loadRef = useRef(load);
  loadRef.current = load;
  const optionsRef = useRef(options);
  optionsRef.current = options;

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let delay = FAST_MS;
    let last = "";
    let failures = 0;
    let inFlight = false;
    let again = false;
    setState((s) => ({ key, data: optionsRef.current.keep ? s.data : undefined }));
    const tick = async () => {
      timer = undefined;
      if (stopped) return;
      if (document.hidden) return; // visibilitychange starts it again
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = true;
      let next: number | undefined;
      try {
        const data = await loadRef.current();
        if (stopped) return;
        const text = JSON.stringify(data);
        const fastest = optionsRef.current.minMs ?? FAST_MS;
        delay = text === last ? Math.min(delay * 2, SLOW_MS) : fastest;
        last = text;
        failures = 0;
        setState({ key, data });
        const { active, always } = optionsRef.current;
        next = active(data) ? delay : always ? SLOW_MS : undefined;
      } catch (error) {
        if (stopped) return;
        failures++;
        setState((s) => ({ ...s, key, error: describeError(error) }));
        next = Math.min(FAST_MS * 2 ** failures, ERROR_MS);
      }
      inFlight = false;
      if (again) {
        again = false;
        next = 0;
      }
      if (next !== undefined && !stopped) timer = setTimeout(tick, next);
    };
    const now = () => {
      if (timer) clearTimeout(timer);
      delay = FAST_MS;
      void tick();
    };
    kick.current = now;
    const onVisible = () => {
      if (!document.hidden && !timer) now();
    };
    document.addEventListener("visibilitychange", onVisible);
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisible);
    };
  }, [key]);

  const current = state.key === key || options.keep ? state : { key };
  return { data: current.data, error: current.error, refresh: () => kick.current() };
}
