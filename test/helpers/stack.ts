/**
 * `useLocalStack()` gives an integration test file the app part of the local stack: its own tables
 * and queues (a stage unique to the file) on the emulators started once by global-setup.ts, the
 * HTTP API on a free port, the SQS pollers and the sweeper timer, the typed client of its API
 * (`client`, lib/client: for using the API), and `api()`, raw requests and answers (for testing
 * the API itself: statuses, headers, malformed bodies). (The `localEndpoints` type of `inject` is
 * declared in global-setup.ts.)
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, inject } from "vitest";
import { consoleLog } from "../../infra/local/log";
import { type LocalStack, type LocalStackOptions, startLocalStack } from "../../infra/local/stack";
import { createClient, type OnceflowClient } from "../../lib/client";

export type UseLocalStackOptions = Omit<LocalStackOptions, "endpoints" | "port">;

export interface ApiResponse {
  status: number;
  headers: Headers;
  /** The parsed JSON body; the text when it is not JSON; undefined when empty. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies freely.
  body: any;
  text: string;
}

export interface LocalStackFixture {
  /** The running stack (available from beforeAll on). */
  readonly stack: LocalStack;
  /** `http://127.0.0.1:PORT` */
  readonly apiUrl: string;
  /** The typed client (lib/client) of the stack's API: an error answer throws an OnceflowError. */
  readonly client: OnceflowClient;
  /**
   * Calls the HTTP API and gives the raw answer, for a test of the API itself (its statuses,
   * headers, bodies). An object body is sent as JSON; a string body as is (say its Content-Type
   * in `headers`).
   */
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
}

/** A stage name unique to this test file's process: `t` + 8 hex characters. */
export function uniqueStage(): string {
  return `t${randomBytes(4).toString("hex")}`;
}

export function useLocalStack(options: UseLocalStackOptions = {}): LocalStackFixture {
  let stack: LocalStack | undefined;
  let client: OnceflowClient | undefined;

  beforeAll(async () => {
    client = undefined;
    stack = await startLocalStack({
      stage: uniqueStage(),
      log: consoleLog({ prefix: "[stack]", minLevel: "warn" }),
      scheduleIntervalMs: 1000,
      environment: { SWEEP_EVERY_SECONDS: "1" },
      ...options,
      port: 0,
      endpoints: inject("localEndpoints"),
    });
  }, 120_000);

  afterAll(async () => {
    const denied = stack?.denied ?? [];
    await stack?.stop();
    // a call a role does not grant was refused (infra/local/iam.ts): serverless.yml lacks a grant
    if (denied.length > 0) throw new Error(`calls refused by the roles: ${JSON.stringify(denied)}`);
  }, 60_000);

  const running = (): LocalStack => {
    if (!stack) throw new Error("the local stack is not started yet (use it inside tests or hooks)");
    return stack;
  };

  return {
    get stack() {
      return running();
    },
    get apiUrl() {
      return running().apiUrl;
    },
    get client() {
      client ??= createClient(running().apiUrl);
      return client;
    },
    api: (method, path, body, headers) => callApi(running().apiUrl, method, path, body, headers),
  };
}

/** Calls an HTTP API at `baseUrl` and reads the answer. */
export async function callApi(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiResponse> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    if (typeof body === "string" || body instanceof Uint8Array) {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
      const hasContentType = Object.keys(headers).some((name) => name.toLowerCase() === "content-type");
      if (!hasContentType) (init.headers as Record<string, string>)["content-type"] = "application/json";
    }
  }
  const response = await fetch(new URL(path, baseUrl), init);
  const text = await response.text();
  let parsed: unknown;
  if (text !== "") {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  return { status: response.status, headers: response.headers, body: parsed, text };
}

/**
 * A client of the API at `baseUrl` that sends each request again while the answer is a 5xx (up
 * to 50 times, 50 ms apart), as a client retrying would: under chaos an API handler may have
 * crashed. The last answer stands (a 5xx then throws, as any error answer does).
 */
export function persistentClient(baseUrl: string): OnceflowClient {
  const retrying: typeof fetch = async (input, init) => {
    for (let attempt = 0; ; attempt++) {
      const response = await fetch(input, init);
      if (response.status < 500 || attempt >= 50) return response;
      await response.body?.cancel();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  return createClient({ baseUrl, fetch: retrying });
}
