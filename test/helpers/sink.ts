/**
 * A local HTTP server standing in for the services workflows call (`core.http`): it records every
 * request, answers a status chosen per path, and can hold requests at a barrier and release them
 * all at the same instant, to make completions race.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll } from "vitest";

export interface SinkRequest {
  method: string;
  /** The path without the query string. */
  path: string;
  query: string;
  /** Lowercased names. */
  headers: Record<string, string>;
  body: string;
  /** The body parsed as JSON, when it is JSON. */
  json?: unknown;
  /** `Date.now()` when the request arrived. */
  at: number;
  /** `Date.now()` when it was answered (undefined while held). */
  answeredAt?: number;
}

export interface SinkAnswer {
  /** One status, or a sequence consumed one request at a time (the last one repeats). */
  status: number | number[];
  /** Sent as JSON (default `{"ok": true}`). */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Sink {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Every request so far, in arrival order. */
  requests: SinkRequest[];
  /** Requests to one path. */
  requestsTo(path: string): SinkRequest[];
  /** Answers requests to `path` with this status (or sequence of statuses) from now on. */
  respond(path: string, status: number | number[], body?: unknown, headers?: Record<string, string>): void;
  /** Chooses the status of every request not answered by `respond` (undefined: 200). */
  decide(choose: (request: SinkRequest) => number | undefined): void;
  /** Answers requests to `path` only after `ms` milliseconds (so that overlapping calls can be seen). */
  delay(path: string, ms: number): void;
  /** Holds the next `n` requests unanswered; resolves once `n` are waiting. */
  holdNext(n: number): Promise<void>;
  /** Answers every held request at the same instant (later `holdNext` barriers stay). */
  release(): void;
  /** Resolves once at least `n` requests (optionally to `path`) have arrived. */
  waitForRequests(n: number, options?: { path?: string; timeoutMs?: number }): Promise<SinkRequest[]>;
  /** Forgets recorded requests and answers; releases held requests. */
  reset(): void;
  close(): Promise<void>;
}

interface Held {
  request: SinkRequest;
  answer: () => void;
}

export async function startSink(): Promise<Sink> {
  const requests: SinkRequest[] = [];
  const answers = new Map<string, SinkAnswer & { served: number }>();
  const delays = new Map<string, number>();
  let choose: ((request: SinkRequest) => number | undefined) | undefined;
  let holding = 0;
  let held: Held[] = [];
  let barriers: { count: number; reached: () => void }[] = [];
  const arrivals = new Set<() => void>();

  const server = createServer((request, response) => {
    readRequest(request).then((recorded) => {
      requests.push(recorded);
      for (const notify of arrivals) notify();
      const delayMs = delays.get(recorded.path) ?? 0;
      const answer = () =>
        delayMs > 0
          ? setTimeout(() => answerRequest(recorded, response), delayMs)
          : answerRequest(recorded, response);
      if (holding > 0) {
        holding--;
        held.push({ request: recorded, answer });
        const reached = barriers.filter((barrier) => held.length >= barrier.count);
        barriers = barriers.filter((barrier) => held.length < barrier.count);
        for (const barrier of reached) barrier.reached();
        return;
      }
      answer();
    }, response.destroy.bind(response));
  });

  function answerRequest(recorded: SinkRequest, response: ServerResponse): void {
    const configured = answers.get(recorded.path);
    let status = choose?.(recorded) ?? 200;
    let body: unknown = { ok: true };
    let headers: Record<string, string> = {};
    if (configured) {
      const statuses = [configured.status].flat();
      status = statuses[Math.min(configured.served, statuses.length - 1)] ?? 200;
      configured.served++;
      if (configured.body !== undefined) body = configured.body;
      headers = configured.headers ?? {};
    }
    recorded.answeredAt = Date.now();
    response.writeHead(status, { "content-type": "application/json", ...headers });
    response.end(JSON.stringify(body));
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  /** Answers what is held; holds asked for after them (`holdNext` not yet reached) stay. */
  const release = () => {
    const toAnswer = held;
    held = [];
    barriers = barriers.map((barrier) => ({ ...barrier, count: barrier.count - toAnswer.length }));
    for (const { answer } of toAnswer) answer();
  };
  const releaseAll = () => {
    holding = 0;
    barriers = [];
    release();
  };

  return {
    url,
    requests,
    requestsTo: (path) => requests.filter((request) => request.path === path),
    decide(chooser) {
      choose = chooser;
    },
    delay(path, ms) {
      delays.set(path, ms);
    },
    respond(path, status, body, headers) {
      answers.set(path, { status, body, headers, served: 0 });
    },
    holdNext(n) {
      holding += n;
      const count = held.length + n;
      return new Promise<void>((resolve) => {
        barriers.push({ count, reached: resolve });
      });
    },
    release,
    waitForRequests(n, options = {}) {
      const matching = () => (options.path ? requests.filter((r) => r.path === options.path) : requests);
      return new Promise<SinkRequest[]>((resolve, reject) => {
        const check = () => {
          if (matching().length < n) return;
          arrivals.delete(check);
          clearTimeout(timer);
          resolve(matching());
        };
        const timer = setTimeout(() => {
          arrivals.delete(check);
          reject(
            new Error(
              `sink: ${matching().length} of ${n} requests arrived${options.path ? ` at ${options.path}` : ""}`,
            ),
          );
        }, options.timeoutMs ?? 30_000);
        arrivals.add(check);
        check();
      });
    },
    reset() {
      releaseAll();
      requests.length = 0;
      answers.clear();
      delays.clear();
      choose = undefined;
    },
    close() {
      releaseAll();
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

/** A sink for the whole test file: started in beforeAll, closed in afterAll. */
export function useSink(): { readonly sink: Sink } {
  let sink: Sink | undefined;
  beforeAll(async () => {
    sink = await startSink();
  });
  afterAll(async () => {
    await sink?.close();
  });
  return {
    get sink() {
      if (!sink) throw new Error("the sink is not started yet");
      return sink;
    },
  };
}

async function readRequest(request: IncomingMessage): Promise<SinkRequest> {
  const at = Date.now();
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks).toString("utf8");
  const [path = "/", query = ""] = (request.url ?? "/").split(/\?(.*)/s);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  let json: unknown;
  try {
    json = body === "" ? undefined : JSON.parse(body);
  } catch {
    json = undefined;
  }
  return {
    method: request.method ?? "GET",
    path,
    query,
    headers,
    body,
    ...(json === undefined ? {} : { json }),
    at,
  };
}

/** The most calls the sink was inside of at any instant. */
export function peakOverlap(requests: SinkRequest[]): number {
  const edges = requests.flatMap((r) => [
    { at: r.at, step: 1 },
    { at: r.answeredAt ?? Number.POSITIVE_INFINITY, step: -1 },
  ]);
  // an answer and an arrival at the same millisecond: the answer first (the slot was given back)
  edges.sort((a, b) => a.at - b.at || a.step - b.step);
  let inside = 0;
  let peak = 0;
  for (const edge of edges) {
    inside += edge.step;
    peak = Math.max(peak, inside);
  }
  return peak;
}
