import "../../helpers/unit-env";
import { TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { GetCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { handler } from "../../../functions/api";
import { db } from "../../../lib/clients";
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
    dynamo.on(TransactWriteCommand).rejects(
      new TransactionCanceledException({
        message: "cancelled",
        $metadata: {},
        CancellationReasons: [
          { Code: "ConditionalCheckFailed", Item: marshall({ status: "running" }) },
          { Code: "None" },
          { Code: "None" },
        ],
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
