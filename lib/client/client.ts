/**
 * A typed client of onceflow's HTTP API (docs/api.md): one method per route. It only needs
 * `fetch`, so it runs in Node and in a browser; SigV4 signing (./sigv4.ts) and a bearer token are
 * hooks.
 */
import { errorFromResponse, OnceflowError } from "./errors";
import {
  type CallbackAnswer,
  type CallbackBody,
  type CreatedRun,
  type CreateRunOptions,
  isTerminal,
  type ListRunsQuery,
  type RedrivenRun,
  type Registration,
  type RunCreated,
  type RunEvent,
  type RunPage,
  type RunSummary,
  type RunView,
  type TaskDetail,
  type WorkflowDefinition,
  type WorkflowListEntry,
  type WorkflowVersions,
  type WorkflowVersionView,
} from "./types";

/** A request as it is about to be sent, for a sign hook. */
export interface OutgoingRequest {
  method: string;
  url: URL;
  /** Lower-case names. */
  headers: Record<string, string>;
  body?: string;
}

/** Returns the headers to add (or replace) on the request, e.g. a SigV4 signature's. */
export type SignHook = (request: OutgoingRequest) => Record<string, string> | Promise<Record<string, string>>;

export interface ClientOptions {
  /** The API's base URL, e.g. `http://127.0.0.1:3000` or an API Gateway stage's URL. */
  baseUrl: string;
  /** Default: the global `fetch`. */
  fetch?: typeof fetch;
  /** Sent with every request. */
  headers?: Record<string, string>;
  /** Sent as `Authorization: Bearer TOKEN` (the JWT authorizer). */
  token?: string;
  /** Called last with each request; its headers are added (SigV4 for the IAM authorizer: ./sigv4.ts). */
  sign?: SignHook;
}

export interface WaitOptions {
  /** Give up after this long (an OnceflowError `WaitTimedOut`; the run goes on). Default 60 s; 0: never. */
  timeoutMs?: number;
  /** Between two polls of the run. Default 500 ms. */
  intervalMs?: number;
  /** Called with the run at each poll (the last one too). */
  onPoll?: (run: RunView) => void;
  /** Stops waiting (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

type Query = Record<string, string | number | undefined>;

interface Call {
  method: "GET" | "PUT" | "POST";
  path: string;
  query?: Query;
  /** An object is sent as JSON; a string as is (give its content-type in `headers`). */
  body?: unknown;
  headers?: Record<string, string>;
}

const segment = encodeURIComponent;

export class OnceflowClient {
  readonly baseUrl: string;
  readonly #fetch: typeof fetch;
  readonly #options: ClientOptions;

  constructor(options: ClientOptions) {
    this.#options = options;
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    const f = options.fetch ?? globalThis.fetch;
    if (!f) throw new Error("no fetch: pass one in the options");
    this.#fetch = f.bind(globalThis);
  }

  // --- workflows ---

  /** `GET /workflows`: every workflow, by name, with its latest version. */
  async listWorkflows(): Promise<WorkflowListEntry[]> {
    return (await this.#call<{ workflows: WorkflowListEntry[] }>({ method: "GET", path: "/workflows" })).body
      .workflows;
  }

  /**
   * `PUT /workflows/{name}`: registers a definition (an object, sent as JSON, or YAML or JSON text)
   * as the workflow's next version; `created` is false when it was the latest already.
   */
  async putWorkflow(name: string, definition: WorkflowDefinition | object | string): Promise<Registration> {
    const text = typeof definition === "string";
    const { status, body } = await this.#call<{ name: string; version: number }>({
      method: "PUT",
      path: `/workflows/${segment(name)}`,
      body: definition,
      headers: text
        ? { "content-type": looksLikeJson(definition) ? "application/json" : "application/yaml" }
        : {},
    });
    return { name: body.name, version: body.version, created: status === 201 };
  }

  /** `GET /workflows/{name}`: the latest version, with its definition. */
  async getWorkflow(name: string): Promise<WorkflowVersionView> {
    return (await this.#call<WorkflowVersionView>({ method: "GET", path: `/workflows/${segment(name)}` }))
      .body;
  }

  /** `GET /workflows/{name}/versions`: every version, newest first. */
  async listVersions(name: string): Promise<WorkflowVersions> {
    return (
      await this.#call<WorkflowVersions>({ method: "GET", path: `/workflows/${segment(name)}/versions` })
    ).body;
  }

  /** `GET /workflows/{name}/versions/{version}`: one version, with its definition (a run's, say). */
  async getWorkflowVersion(name: string, version: number): Promise<WorkflowVersionView> {
    return (
      await this.#call<WorkflowVersionView>({
        method: "GET",
        path: `/workflows/${segment(name)}/versions/${version}`,
      })
    ).body;
  }

  // --- runs ---

  /**
   * `POST /workflows/{name}/runs`: creates a run of the latest version and starts it (unless
   * `start: false`). With an `idempotencyKey`, the same call again answers the same run
   * (`created: false`).
   */
  async createRun(workflow: string, options: CreateRunOptions = {}): Promise<CreatedRun> {
    const { input, start, idempotencyKey } = options;
    const body: Record<string, unknown> = {};
    if (input !== undefined) body.input = input;
    if (start !== undefined) body.start = start;
    const { status, body: run } = await this.#call<RunCreated>({
      method: "POST",
      path: `/workflows/${segment(workflow)}/runs`,
      body,
      headers: idempotencyKey === undefined ? {} : { "idempotency-key": idempotencyKey },
    });
    return { runId: run.runId, status: run.status, created: status === 201 };
  }

  /** `GET /runs/{runId}`: the run, with each task's progress. */
  async getRun(runId: string): Promise<RunView> {
    return (await this.#call<RunView>({ method: "GET", path: `/runs/${segment(runId)}` })).body;
  }

  /** `GET /runs`: one page of runs, newest first. Only a missing `nextCursor` means the last page. */
  async listRuns(query: ListRunsQuery = {}): Promise<RunPage> {
    const { workflow, status, limit, cursor } = query;
    return (
      await this.#call<RunPage>({ method: "GET", path: "/runs", query: { workflow, status, limit, cursor } })
    ).body;
  }

  /**
   * Every run matching the filters, newest first, page after page (`limit` is the page size; stop
   * iterating to stop reading). A page filtered by status may be empty and still not the last.
   */
  async *iterateRuns(query: Omit<ListRunsQuery, "cursor"> = {}): AsyncGenerator<RunSummary, void, undefined> {
    let cursor: string | undefined;
    do {
      const page = await this.listRuns({ ...query, cursor });
      yield* page.runs;
      cursor = page.nextCursor;
    } while (cursor);
  }

  /**
   * `GET /runs/{runId}/tasks/{task}`: one task with its input, output and error (a with-items task:
   * its counters; one of its items with `item`).
   */
  async getTask(runId: string, task: string, item?: number): Promise<TaskDetail> {
    return (
      await this.#call<TaskDetail>({
        method: "GET",
        path: `/runs/${segment(runId)}/tasks/${segment(task)}`,
        query: { item },
      })
    ).body;
  }

  /** `GET /runs/{runId}/events`: the run's history, in order. */
  async getEvents(runId: string): Promise<RunEvent[]> {
    return (
      await this.#call<{ events: RunEvent[] }>({ method: "GET", path: `/runs/${segment(runId)}/events` })
    ).body.events;
  }

  /** `POST /runs/{runId}/trigger`: starts a run created with `start: false` (409 `RunAlreadyStarted` unless it is pending). */
  async triggerRun(runId: string): Promise<RunCreated> {
    return (await this.#call<RunCreated>({ method: "POST", path: `/runs/${segment(runId)}/trigger` })).body;
  }

  /** `POST /runs/{runId}/cancel` (409 `RunAlreadyEnded` once it ended). */
  async cancelRun(runId: string): Promise<RunCreated> {
    return (await this.#call<RunCreated>({ method: "POST", path: `/runs/${segment(runId)}/cancel` })).body;
  }

  /** `POST /runs/{runId}/redrive`: restarts a failed run from what failed. */
  async redriveRun(runId: string): Promise<RedrivenRun> {
    return (await this.#call<RedrivenRun>({ method: "POST", path: `/runs/${segment(runId)}/redrive` })).body;
  }

  /**
   * Polls the run until it has ended (succeeded, failed or cancelled) and returns it. Gives up
   * after `timeoutMs` with an OnceflowError `WaitTimedOut` whose `fields.run` is the run as last seen.
   */
  async waitForRun(runId: string, options: WaitOptions = {}): Promise<RunView> {
    const { timeoutMs = 60_000, intervalMs = 500, onPoll, signal } = options;
    const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Number.POSITIVE_INFINITY;
    for (;;) {
      signal?.throwIfAborted();
      const run = await this.getRun(runId);
      onPoll?.(run);
      if (isTerminal(run.status)) return run;
      if (Date.now() + intervalMs > deadline)
        throw new OnceflowError(
          "WaitTimedOut",
          0,
          `run ${runId} is still ${run.status} after ${timeoutMs} ms`,
          { fields: { run } },
        );
      await sleep(intervalMs, signal);
    }
  }

  // --- callbacks ---

  /** `POST /callbacks/{token}`: completes a waiting `core.callback` task with `{output}` or `{error}`. */
  async completeCallback(token: string, body: CallbackBody): Promise<CallbackAnswer> {
    return (await this.#call<CallbackAnswer>({ method: "POST", path: `/callbacks/${segment(token)}`, body }))
      .body;
  }

  /** `POST /callbacks/{token}/heartbeat`: keeps a waiting callback alive. */
  async heartbeatCallback(token: string): Promise<{ heartbeatUntil: string }> {
    return (
      await this.#call<{ heartbeatUntil: string }>({
        method: "POST",
        path: `/callbacks/${segment(token)}/heartbeat`,
      })
    ).body;
  }

  // --- the API itself ---

  /** `GET /openapi.json`: the API as an OpenAPI 3.1 document. */
  async getOpenApi(): Promise<Record<string, unknown>> {
    return (await this.#call<Record<string, unknown>>({ method: "GET", path: "/openapi.json" })).body;
  }

  /** `GET /health`. */
  async health(): Promise<{ status: "ok" }> {
    return (await this.#call<{ status: "ok" }>({ method: "GET", path: "/health" })).body;
  }

  async #call<T>(call: Call): Promise<{ status: number; body: T }> {
    const url = new URL(this.baseUrl + call.path);
    for (const [name, value] of Object.entries(call.query ?? {}))
      if (value !== undefined) url.searchParams.set(name, String(value));
    const headers: Record<string, string> = { accept: "application/json" };
    for (const [name, value] of Object.entries(this.#options.headers ?? {}))
      headers[name.toLowerCase()] = value;
    if (this.#options.token) headers.authorization = `Bearer ${this.#options.token}`;
    for (const [name, value] of Object.entries(call.headers ?? {})) headers[name.toLowerCase()] = value;
    let body: string | undefined;
    if (typeof call.body === "string") body = call.body;
    else if (call.body !== undefined) {
      body = JSON.stringify(call.body);
      headers["content-type"] ??= "application/json";
    }
    if (this.#options.sign) {
      const signed = await this.#options.sign({ method: call.method, url, headers: { ...headers }, body });
      for (const [name, value] of Object.entries(signed)) headers[name.toLowerCase()] = value;
    }
    const request = `${call.method} ${call.path}`;
    let response: Response;
    try {
      response = await this.#fetch(url, { method: call.method, headers, body });
    } catch (error) {
      const reason = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new OnceflowError(
        "NetworkError",
        0,
        `cannot reach ${this.baseUrl}: ${reason?.code ?? reason?.message ?? (error as Error).message}`,
        { request, cause: error },
      );
    }
    const text = await response.text();
    if (response.status >= 400) throw errorFromResponse(response.status, text, request);
    try {
      return { status: response.status, body: JSON.parse(text) as T };
    } catch {
      throw new OnceflowError(
        "UnexpectedResponse",
        response.status,
        `HTTP ${response.status} with a body that is not JSON (${request}): ${text.slice(0, 200)}`,
        { request },
      );
    }
  }
}

/** A client of the API at `baseUrl` (or with every option). */
export function createClient(options: ClientOptions | string): OnceflowClient {
  return new OnceflowClient(typeof options === "string" ? { baseUrl: options } : options);
}

function looksLikeJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", abort);
      resolve();
    }
    function abort() {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener("abort", abort, { once: true });
  });
}
