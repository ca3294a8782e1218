import "../../helpers/unit-env";
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { handler } from "../../../functions/api";
import { CONTENTION_RETRY_AFTER_SECONDS, errorResponse } from "../../../functions/api/errors";
import { db } from "../../../lib/clients";
import { ContentionError } from "../../../lib/errors";
import { useSleep } from "../../../lib/store/backoff";
import { CONTENTION_TRIES } from "../../../lib/store/contention";
import { httpEvent, lambdaContext } from "../../helpers/lambda-events";

const dynamo = mockClient(db());
beforeEach(() => dynamo.reset());

async function call(...args: Parameters<typeof httpEvent>) {
  const response = (await handler(httpEvent(...args), lambdaContext)) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode, body: JSON.parse(response.body ?? "null") };
}

describe("api handler", () => {
  it("answers an unknown path with 404 RouteNotFound and a wrong method with 405", async () => {
    expect(await call("GET", "/nope")).toMatchObject({
      status: 404,
      body: { error: { code: "RouteNotFound" } },
    });
    expect(await call("DELETE", "/runs/abc")).toMatchObject({
      status: 405,
      body: { error: { code: "MethodNotAllowed" } },
    });
    expect(dynamo.calls()).toHaveLength(0);
  });

  it("answers malformed JSON with 400 MalformedBody and touches nothing", async () => {
    const response = await call("POST", "/workflows/w/runs", { body: "{nope" });
    expect(response).toMatchObject({ status: 400, body: { error: { code: "MalformedBody" } } });
    expect(dynamo.calls()).toHaveLength(0);
  });

  it("maps a trigger that lost the conditional write to 409 RunAlreadyStarted with the winner's status", async () => {
    dynamo.on(GetCommand).callsFake((input) => {
      if (input.Key.sk === "RUN") {
        return {
          Item: { runId: "r1", workflow: "w", version: 1, status: "pending", input: {}, createdAt: "x" },
        };
      }
      return {
        Item: {
          name: "w",
          version: 1,
          hash: "h",
          createdAt: "x",
          definition: { name: "w", tasks: { a: { action: "core.noop" } } },
        },
      };
    });
    // a run whose start leaves nothing to advance starts with one write of the run (engine/start.ts)
    dynamo.on(UpdateCommand).rejects(
      new ConditionalCheckFailedException({
        message: "the conditional request failed",
        $metadata: {},
        Item: marshall({ status: "running" }),
      }),
    );
    const response = await call("POST", "/runs/r1/trigger", {
      routeKey: "POST /runs/{runId}/trigger",
      pathParameters: { runId: "r1" },
    });
    expect(response).toEqual({
      status: 409,
      body: {
        error: {
          code: "RunAlreadyStarted",
          message: "run r1 is running, not pending",
          runId: "r1",
          status: "running",
        },
      },
    });
  });

  it("maps ContentionError to 503 Contention with Retry-After, in the body every error has", () => {
    const response = errorResponse(new ContentionError("cancel run r1", 10, new Error("lost")));
    expect(response.statusCode).toBe(503);
    expect(response.headers).toEqual({
      "content-type": "application/json",
      "retry-after": String(CONTENTION_RETRY_AFTER_SECONDS),
    });
    expect(CONTENTION_RETRY_AFTER_SECONDS).toBe(1);
    expect(JSON.parse(response.body ?? "null")).toEqual({
      error: {
        code: "Contention",
        message: "could not cancel run r1: lost the race 10 times in a row (contention); try again shortly",
      },
    });
  });

  it("answers a cancel whose run moves under every try with 503 Contention, after the tries, not 500", async () => {
    const restoreSleep = useSleep(async () => {});
    try {
      dynamo.on(GetCommand).resolves({
        Item: { runId: "r1", workflow: "w", version: 1, status: "pending", input: {}, createdAt: "x" },
      });
      // the run's status moves between the read and the write, every time
      dynamo.on(UpdateCommand).rejects(
        new ConditionalCheckFailedException({
          message: "no",
          $metadata: {},
          Item: marshall({ status: "running" }),
        }),
      );
      const response = (await handler(
        httpEvent("POST", "/runs/r1/cancel", {
          routeKey: "POST /runs/{runId}/cancel",
          pathParameters: { runId: "r1" },
        }),
        lambdaContext,
      )) as APIGatewayProxyStructuredResultV2;
      expect(response.statusCode).toBe(503);
      expect(response.headers?.["retry-after"]).toBe("1");
      expect(JSON.parse(response.body ?? "null")).toEqual({
        error: { code: "Contention", message: expect.stringMatching(/^could not cancel run r1/) },
      });
      expect(dynamo.commandCalls(UpdateCommand)).toHaveLength(CONTENTION_TRIES);
    } finally {
      restoreSleep();
    }
  });

  it("never shows an internal error's message or stack to the client", async () => {
    dynamo.onAnyCommand().rejects(new Error("secret internals at /var/task/index.js:1"));
    const response = await call("GET", "/runs/r1", {
      routeKey: "GET /runs/{runId}",
      pathParameters: { runId: "r1" },
    });
    expect(response).toEqual({
      status: 500,
      body: { error: { code: "InternalError", message: "internal error" } },
    });
  });
});
