/**
 * The client against a fake fetch: what it sends (paths, query, headers, bodies), how it maps the
 * API's answers and errors, pagination and waitForRun.
 */
import { describe, expect, it } from "vitest";
import { STATUS_BY_CODE } from "../../../functions/api/errors";
import { API_ERROR_CODES, createClient, isOnceflowError } from "../../../lib/client";
import { regionOfUrl, sigV4Signer } from "../../../lib/client/sigv4";
import { rejection } from "../../helpers/rejection";

interface Sent {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: string;
}

/** A fetch answering from `answer`, recording every request. */
function fakeFetch(answer: (request: Sent) => { status: number; body?: unknown; text?: string }) {
  const sent: Sent[] = [];
  const fetch = (async (input: URL | string, init: RequestInit = {}) => {
    const request: Sent = {
      method: init.method ?? "GET",
      url: new URL(String(input)),
      headers: { ...(init.headers as Record<string, string>) },
      body: init.body as string | undefined,
    };
    sent.push(request);
    const { status, body, text } = answer(request);
    return new Response(text ?? (body === undefined ? "" : JSON.stringify(body)), {
      status,
      headers: { "content-type": "application/json" },
    });
  }) as typeof globalThis.fetch;
  return { fetch, sent };
}

describe("requests", () => {
  it("sends each route's method, path, query, headers and body", async () => {
    const { fetch, sent } = fakeFetch(({ method, url }) => {
      if (method === "POST" && url.pathname.endsWith("/runs"))
        return { status: 201, body: { runId: "r1", status: "running" } };
      if (method === "PUT") return { status: 200, body: { name: "w", version: 3 } };
      if (url.pathname === "/runs") return { status: 200, body: { runs: [] } };
      return { status: 200, body: {} };
    });
    const client = createClient({
      baseUrl: "http://api.test/stage/",
      fetch,
      headers: { "X-Extra": "1" },
      token: "tok",
    });

    const created = await client.createRun("my flow", { input: { a: 1 }, idempotencyKey: "k-1" });
    expect(created).toEqual({ runId: "r1", status: "running", created: true });
    expect(sent[0]?.method).toBe("POST");
    expect(sent[0]?.url.href).toBe("http://api.test/stage/workflows/my%20flow/runs");
    expect(sent[0]?.headers).toMatchObject({
      "idempotency-key": "k-1",
      "content-type": "application/json",
      authorization: "Bearer tok",
      "x-extra": "1",
    });
    expect(JSON.parse(sent[0]?.body ?? "")).toEqual({ input: { a: 1 } });

    const registered = await client.putWorkflow("w", "name: w\ntasks: {}\n");
    expect(registered).toEqual({ name: "w", version: 3, created: false });
    expect(sent[1]?.headers["content-type"]).toBe("application/yaml");
    await client.putWorkflow("w", '{"name": "w"}');
    expect(sent[2]?.headers["content-type"]).toBe("application/json");
    await client.putWorkflow("w", { name: "w", tasks: {} });
    expect(sent[3]?.headers["content-type"]).toBe("application/json");

    await client.listRuns({ workflow: "w", status: "failed", limit: 5 });
    expect(sent[4]?.url.pathname).toBe("/stage/runs");
    expect(Object.fromEntries(sent[4]?.url.searchParams ?? [])).toEqual({
      workflow: "w",
      status: "failed",
      limit: "5",
    });

    await client.cancelRun("a/b");
    expect(sent[5]?.url.pathname).toBe("/stage/runs/a%2Fb/cancel");
    await client.completeCallback("t.k", { output: 1 });
    expect(sent[6]?.url.pathname).toBe("/stage/callbacks/t.k");
    expect(sent[6]?.body).toBe('{"output":1}');
  });

  it("a replayed idempotency key is created: false", async () => {
    const { fetch } = fakeFetch(() => ({ status: 200, body: { runId: "r1", status: "running" } }));
    const created = await createClient({ baseUrl: "http://x", fetch }).createRun("w", {
      idempotencyKey: "k",
    });
    expect(created.created).toBe(false);
  });

  it("the sign hook sees the final request and its headers are sent", async () => {
    const { fetch, sent } = fakeFetch(() => ({ status: 200, body: { runs: [] } }));
    const seen: string[] = [];
    const client = createClient({
      baseUrl: "http://x",
      fetch,
      sign: ({ method, url, body }) => {
        seen.push(`${method} ${url.pathname}${url.search} ${body ?? ""}`);
        return { authorization: "signed" };
      },
    });
    await client.listRuns({ limit: 2 });
    expect(seen).toEqual(["GET /runs?limit=2 "]);
    expect(sent[0]?.headers.authorization).toBe("signed");
  });
});

describe("errors", () => {
  it("maps the API's error body to code, status, message, details and fields", async () => {
    const { fetch } = fakeFetch(() => ({
      status: 400,
      body: {
        error: {
          code: "InvalidWorkflow",
          message: "workflow definition has 1 problem(s)",
          details: [{ path: "tasks.a.next[0].do[0]", message: "no task 'b'" }],
        },
      },
    }));
    const error = await rejection(createClient({ baseUrl: "http://x", fetch }).putWorkflow("w", {}));
    expect(error).toMatchObject({ code: "InvalidWorkflow", status: 400, request: "PUT /workflows/w" });
    expect(error.message).toBe("workflow definition has 1 problem(s)");
    expect(error.problems).toEqual([{ path: "tasks.a.next[0].do[0]", message: "no task 'b'" }]);
    expect(isOnceflowError(error, "InvalidWorkflow")).toBe(true);
    expect(isOnceflowError(error, "RunNotFound")).toBe(false);
  });

  it("keeps a 409's fields", async () => {
    const { fetch } = fakeFetch(() => ({
      status: 409,
      body: { error: { code: "RunAlreadyEnded", message: "ended", runId: "r1", status: "succeeded" } },
    }));
    const error = await rejection(createClient({ baseUrl: "http://x", fetch }).cancelRun("r1"));
    expect(error).toMatchObject({
      code: "RunAlreadyEnded",
      status: 409,
      fields: { runId: "r1", status: "succeeded" },
    });
  });

  it("an answer that is not the API's is UnexpectedResponse, with what it said", async () => {
    const forbidden = fakeFetch(() => ({ status: 403, body: { message: "Forbidden" } }));
    const error = await rejection(createClient({ baseUrl: "http://x", fetch: forbidden.fetch }).getRun("r"));
    expect(error).toMatchObject({ code: "UnexpectedResponse", status: 403 });
    expect(error.message).toContain("Forbidden");

    const html = fakeFetch(() => ({ status: 502, text: "<html>Bad Gateway</html>" }));
    expect(
      await rejection(createClient({ baseUrl: "http://x", fetch: html.fetch }).getRun("r")),
    ).toMatchObject({
      code: "UnexpectedResponse",
      status: 502,
    });

    const notJson = fakeFetch(() => ({ status: 200, text: "ok" }));
    expect(
      await rejection(createClient({ baseUrl: "http://x", fetch: notJson.fetch }).getRun("r")),
    ).toMatchObject({
      code: "UnexpectedResponse",
      status: 200,
    });
  });

  it("no answer at all is NetworkError, status 0", async () => {
    const fetch = (async () => {
      throw new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } });
    }) as typeof globalThis.fetch;
    const error = await rejection(createClient({ baseUrl: "http://127.0.0.1:1", fetch }).health());
    expect(error).toMatchObject({ code: "NetworkError", status: 0 });
    expect(error.message).toContain("ECONNREFUSED");
  });

  it("knows every code the API answers with", () => {
    expect([...API_ERROR_CODES].sort()).toEqual([...Object.keys(STATUS_BY_CODE), "InternalError"].sort());
  });
});

describe("iterateRuns", () => {
  it("follows nextCursor to the last page, keeping the filters, through empty pages", async () => {
    const pages: Record<string, { runs: { runId: string }[]; nextCursor?: string }> = {
      "": { runs: [{ runId: "a" }, { runId: "b" }], nextCursor: "c1" },
      c1: { runs: [], nextCursor: "c2" },
      c2: { runs: [{ runId: "c" }] },
    };
    const { fetch, sent } = fakeFetch(({ url }) => ({
      status: 200,
      body: pages[url.searchParams.get("cursor") ?? ""],
    }));
    const client = createClient({ baseUrl: "http://x", fetch });
    const ids: string[] = [];
    for await (const run of client.iterateRuns({ status: "failed", limit: 2 })) ids.push(run.runId);
    expect(ids).toEqual(["a", "b", "c"]);
    expect(sent.map((r) => r.url.search)).toEqual([
      "?status=failed&limit=2",
      "?status=failed&limit=2&cursor=c1",
      "?status=failed&limit=2&cursor=c2",
    ]);
  });

  it("stops reading when the caller stops", async () => {
    const { fetch, sent } = fakeFetch(() => ({
      status: 200,
      body: { runs: [{ runId: "a" }], nextCursor: "more" },
    }));
    for await (const run of createClient({ baseUrl: "http://x", fetch }).iterateRuns()) {
      expect(run.runId).toBe("a");
      break;
    }
    expect(sent).toHaveLength(1);
  });
});

describe("waitForRun", () => {
  it("polls until the run has ended, reporting each poll", async () => {
    const statuses = ["pending", "running", "succeeded"];
    let i = 0;
    const { fetch } = fakeFetch(() => ({ status: 200, body: { runId: "r", status: statuses[i++] } }));
    const seen: string[] = [];
    const run = await createClient({ baseUrl: "http://x", fetch }).waitForRun("r", {
      intervalMs: 1,
      onPoll: (r) => seen.push(r.status),
    });
    expect(run.status).toBe("succeeded");
    expect(seen).toEqual(statuses);
  });

  it("gives up after timeoutMs with WaitTimedOut and the run as last seen", async () => {
    const { fetch } = fakeFetch(() => ({ status: 200, body: { runId: "r", status: "running" } }));
    const error = await rejection(
      createClient({ baseUrl: "http://x", fetch }).waitForRun("r", { timeoutMs: 30, intervalMs: 10 }),
    );
    expect(error.code).toBe("WaitTimedOut");
    expect(error.fields.run).toMatchObject({ status: "running" });
  });

  it("a run that does not exist rejects at once", async () => {
    const { fetch } = fakeFetch(() => ({
      status: 404,
      body: { error: { code: "RunNotFound", message: "no" } },
    }));
    const error = await rejection(createClient({ baseUrl: "http://x", fetch }).waitForRun("r"));
    expect(error).toMatchObject({ code: "RunNotFound", status: 404 });
  });
});

describe("SigV4", () => {
  it("signs for execute-api in the region, over the path, query and body", async () => {
    const sign = sigV4Signer({
      region: "eu-west-1",
      credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: "session" },
    });
    const url = new URL("https://abc.execute-api.eu-west-1.amazonaws.com/runs?limit=2");
    const headers = await sign({ method: "GET", url, headers: { accept: "application/json" } });
    expect(headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=accept;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/,
    );
    expect(headers["x-amz-security-token"]).toBe("session");
    expect(headers.host).toBeUndefined();
    const other = await sign({
      method: "GET",
      url: new URL("https://abc.execute-api.eu-west-1.amazonaws.com/runs?limit=3"),
      headers: { accept: "application/json" },
    });
    expect(other.authorization).not.toBe(headers.authorization);
    expect(regionOfUrl(url.href)).toBe("eu-west-1");
    expect(regionOfUrl("http://127.0.0.1:3000")).toBeUndefined();
  });
});
