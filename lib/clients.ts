import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

/**
 * The AWS clients the engine uses, created on first use so that endpoints and credentials come from
 * the environment at that moment (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS).
 */
let documentClient: DynamoDBDocumentClient | undefined;
let sqsClient: SQSClient | undefined;

export function db(): DynamoDBDocumentClient {
  documentClient ??= DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
  return documentClient;
}

export function sqs(): SQSClient {
  sqsClient ??= new SQSClient({});
  return sqsClient;
}

/** Anything that answers the engine's commands the way its client would. */
export interface CommandSender {
  send(command: unknown): Promise<unknown>;
}

/**
 * For the deterministic simulation: the engine's calls go to these stand-ins (an in-memory table,
 * in-memory queues) instead of AWS. Returns a function that puts the previous clients back.
 */
export function useClients(clients: { db: CommandSender; sqs: CommandSender }): () => void {
  const previous = { documentClient, sqsClient };
  documentClient = clients.db as unknown as DynamoDBDocumentClient;
  sqsClient = clients.sqs as unknown as SQSClient;
  return () => {
    documentClient = previous.documentClient;
    sqsClient = previous.sqsClient;
  };
}
