import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import "../lib/actions/core";
import "../actions";
import { errorResponse } from "./api/errors";
import { resolveRoute } from "./api/routes";

const logger = new Logger({ serviceName: "onceflow-api" });

/** API Gateway HTTP API (payload v2) → lib/ → JSON response. Errors are mapped in functions/api/errors.ts. */
async function api(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  const { route, params } = resolveRoute(event);
  return route(event, params);
}

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>(api)
  .use(injectLambdaContext(logger))
  .onError((request) => {
    const response = errorResponse(request.error);
    if ((response.statusCode ?? 500) >= 500)
      logger.error("request failed", { error: request.error as Error });
    request.response = response;
  });
