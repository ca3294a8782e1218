/**
 * Vitest globalSetup for integration tests: starts DynamoDB Local and the SQS emulator once for the
 * whole run and provides their endpoints to every test file (`inject("localEndpoints")`). Each file
 * then creates its own tables and queues under a stage of its own (see useLocalStack). With
 * AWS_ENDPOINT_URL set (e.g. LocalStack), nothing is started and that endpoint is provided.
 */
import type { TestProject } from "vitest/node";
import { startDynamoDbLocal } from "../../infra/local/dynamodb-local";
import { startSqsEmulator } from "../../infra/local/sqs-emulator";
import type { LocalEndpoints } from "../../infra/local/stack";

declare module "vitest" {
  export interface ProvidedContext {
    localEndpoints: LocalEndpoints;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const shared = process.env.AWS_ENDPOINT_URL;
  if (shared) {
    project.provide("localEndpoints", { dynamodb: shared, sqs: shared });
    return undefined;
  }
  const [dynamodb, sqs] = await Promise.allSettled([startDynamoDbLocal(), startSqsEmulator()]);
  if (dynamodb.status === "rejected" || sqs.status === "rejected") {
    if (dynamodb.status === "fulfilled") await dynamodb.value.stop();
    if (sqs.status === "fulfilled") await sqs.value.stop();
    throw dynamodb.status === "rejected" ? dynamodb.reason : (sqs as PromiseRejectedResult).reason;
  }
  project.provide("localEndpoints", { dynamodb: dynamodb.value.endpoint, sqs: sqs.value.endpoint });
  return async () => {
    await Promise.all([sqs.value.stop(), dynamodb.value.stop()]);
  };
}
