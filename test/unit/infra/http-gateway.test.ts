import { describe, expect, it } from "vitest";
import {
  formatRequestTime,
  isTextContentType,
  matchRoute,
  shapeResponse,
} from "../../../infra/local/http-gateway";

describe("routing and responses of the local HTTP API", () => {
  const routes = [
    "GET /runs/{runId}",
    "GET /runs/{runId}/events",
    "ANY /runs/special",
    "GET /runs/special",
    "$default",
  ].map((routeKey) => ({ routeKey }));

  it("prefers literal segments, then methods over ANY, then $default", () => {
    expect(matchRoute(routes, "GET", "/runs/special")?.route.routeKey).toBe("GET /runs/special");
    expect(matchRoute(routes, "POST", "/runs/special")?.route.routeKey).toBe("ANY /runs/special");
    expect(matchRoute(routes, "GET", "/runs/a%2Fb")).toEqual({
      route: { routeKey: "GET /runs/{runId}" },
      pathParameters: { runId: "a/b" },
    });
    expect(matchRoute(routes, "GET", "/runs/x/events")?.pathParameters).toEqual({ runId: "x" });
    expect(matchRoute(routes, "DELETE", "/runs/x")).toEqual({ route: { routeKey: "$default" } });
    expect(matchRoute(routes.slice(0, 2), "GET", "/nope")).toBeUndefined();
  });

  it("matches greedy path variables", () => {
    const greedy = [{ routeKey: "GET /files/{path+}" }];
    expect(matchRoute(greedy, "GET", "/files/a/b%20c")?.pathParameters).toEqual({ path: "a/b c" });
    expect(matchRoute(greedy, "GET", "/files")).toBeUndefined();
  });

  it("shapes structured and non-structured results like payload 2.0", () => {
    const structured = shapeResponse({
      statusCode: 201,
      headers: { "X-A": 1 },
      body: "hi",
      cookies: ["a=b"],
    });
    expect(structured?.statusCode).toBe(201);
    expect(structured?.headers).toEqual({ "x-a": "1", "content-type": "application/json" });
    expect(structured?.body.toString()).toBe("hi");
    expect(structured?.cookies).toEqual(["a=b"]);
    const plain = shapeResponse({ hello: "world" });
    expect(plain?.statusCode).toBe(200);
    expect(plain?.body.toString()).toBe('{"hello":"world"}');
    expect(shapeResponse({ statusCode: 200, body: "aGk=", isBase64Encoded: true })?.body.toString()).toBe(
      "hi",
    );
    expect(shapeResponse({ statusCode: "nope" })).toBeUndefined();
  });

  it("passes text bodies as text and everything else as base64", () => {
    expect(isTextContentType("application/json; charset=utf-8")).toBe(true);
    expect(isTextContentType("text/plain")).toBe(true);
    expect(isTextContentType("application/problem+json")).toBe(true);
    expect(isTextContentType("application/octet-stream")).toBe(false);
    expect(isTextContentType(undefined)).toBe(false);
  });

  it("formats requestContext.time like API Gateway", () => {
    expect(formatRequestTime(Date.UTC(2020, 2, 12, 19, 3, 58))).toBe("12/Mar/2020:19:03:58 +0000");
  });
});
