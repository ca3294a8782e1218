/**
 * Creates the CloudFormation resources of serverless.yml (`AWS::DynamoDB::Table`,
 * `AWS::SQS::Queue`) against local endpoints, in dependency order, and resolves the intrinsics
 * (`Ref`, `Fn::GetAtt`) that point at them. Nothing here lists a resource: everything comes from
 * the `resources.Resources` section it is given.
 */
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceNotFoundException,
  type TableDescription,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type QueueAttributeName,
  SetQueueAttributesCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { type LocalLog, silentLog } from "./log";
import type { CfnResource } from "./serverless-config";

export type TableType = "AWS::DynamoDB::Table";
export type QueueType = "AWS::SQS::Queue";

export interface CreatedTable {
  type: TableType;
  logicalId: string;
  name: string;
  arn: string;
  url?: undefined;
}

export interface CreatedQueue {
  type: QueueType;
  logicalId: string;
  name: string;
  url: string;
  arn: string;
}

export type CreatedResource = CreatedTable | CreatedQueue;

/** Created resources by logical id. */
export type CreatedResources = Record<string, CreatedResource>;

export interface CreateResourcesOptions {
  dynamodb: DynamoDBClient;
  sqs: SQSClient;
  /** Prefix for resources without an explicit name (CloudFormation would use the stack name). */
  namePrefix: string;
  /**
   * Queue attributes that replace serverless.yml's on every queue, for tests that cannot wait a
   * production visibility timeout (e.g. `{ VisibilityTimeout: "2" }`).
   */
  queueAttributeOverrides?: Partial<Record<QueueAttributeName, string>>;
  log?: LocalLog;
}

const supportedTypes = new Set<string>(["AWS::DynamoDB::Table", "AWS::SQS::Queue"]);

/** Creates every supported resource (or finds it already there) and returns them by logical id. */
export async function createResources(
  resources: Record<string, CfnResource>,
  options: CreateResourcesOptions,
): Promise<CreatedResources> {
  const log = options.log ?? silentLog;
  const created: CreatedResources = {};
  for (const [logicalId, resource] of Object.entries(resources)) {
    if (!supportedTypes.has(resource.Type))
      log.debug(`skipping ${logicalId}: ${resource.Type} is not emulated locally`);
  }
  for (const logicalId of creationOrder(resources)) {
    const resource = resources[logicalId] as CfnResource;
    const properties = resolveIntrinsics(resource.Properties ?? {}, created) as Record<string, unknown>;
    if (resource.Type === "AWS::DynamoDB::Table") {
      created[logicalId] = await createTable(logicalId, properties, options, log);
    } else if (resource.Type === "AWS::SQS::Queue") {
      created[logicalId] = await createQueue(logicalId, properties, options, log);
    }
  }
  return created;
}

/**
 * Orders supported resources so that every resource comes after those it references (through
 * `Ref`, `Fn::GetAtt` or `DependsOn`), keeping the file's order otherwise.
 */
export function creationOrder(resources: Record<string, CfnResource>): string[] {
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (logicalId: string, from: string[]) => {
    const resource = resources[logicalId];
    if (!resource || !supportedTypes.has(resource.Type)) return;
    const current = state.get(logicalId);
    if (current === "done") return;
    if (current === "visiting") throw new Error(`circular dependency: ${[...from, logicalId].join(" -> ")}`);
    state.set(logicalId, "visiting");
    const dependsOn = resource.DependsOn === undefined ? [] : [resource.DependsOn].flat();
    for (const dependency of [...referencedIds(resource.Properties), ...dependsOn]) {
      if (!(dependency in resources))
        throw new Error(`${logicalId} references unknown resource ${dependency}`);
      visit(dependency, [...from, logicalId]);
    }
    state.set(logicalId, "done");
    order.push(logicalId);
  };
  for (const logicalId of Object.keys(resources)) visit(logicalId, []);
  return order;
}

function referencedIds(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(referencedIds);
  if (typeof node !== "object" || node === null) return [];
  const record = node as Record<string, unknown>;
  const intrinsic = asIntrinsic(record);
  if (intrinsic) return [intrinsic.logicalId];
  return Object.values(record).flatMap(referencedIds);
}

interface Intrinsic {
  logicalId: string;
  /** undefined for `Ref` */
  attribute?: string;
}

function asIntrinsic(node: Record<string, unknown>): Intrinsic | undefined {
  const keys = Object.keys(node);
  if (keys.length !== 1) return undefined;
  if (typeof node.Ref === "string") return { logicalId: node.Ref };
  const getAtt = node["Fn::GetAtt"];
  if (getAtt === undefined) return undefined;
  if (Array.isArray(getAtt) && getAtt.length === 2 && getAtt.every((part) => typeof part === "string")) {
    return { logicalId: getAtt[0] as string, attribute: getAtt[1] as string };
  }
  if (typeof getAtt === "string" && getAtt.includes(".")) {
    const dot = getAtt.indexOf(".");
    return { logicalId: getAtt.slice(0, dot), attribute: getAtt.slice(dot + 1) };
  }
  throw new Error(`malformed Fn::GetAtt: ${JSON.stringify(getAtt)}`);
}

/**
 * Resolves `{Ref: X}` (table → name, queue → URL), `{"Fn::GetAtt": [X, Arn]}` (and the queue's
 * `QueueName`/`QueueUrl`), `Fn::Join` and `Fn::Sub` with `${X}`/`${X.Attr}` anywhere inside a
 * value; other values are returned unchanged. Throws on a reference to a resource not created.
 */
export function resolveIntrinsics(value: unknown, created: CreatedResources): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveIntrinsics(item, created));
  if (typeof value !== "object" || value === null) return value;
  const record = value as Record<string, unknown>;
  const intrinsic = asIntrinsic(record);
  if (intrinsic) return attributeOf(intrinsic, created);
  if (Object.keys(record).length === 1 && "Fn::Join" in record) {
    const join = record["Fn::Join"];
    if (!Array.isArray(join) || join.length !== 2 || typeof join[0] !== "string" || !Array.isArray(join[1])) {
      throw new Error(`malformed Fn::Join: ${JSON.stringify(join)}`);
    }
    return (join[1] as unknown[]).map((part) => String(resolveIntrinsics(part, created))).join(join[0]);
  }
  if (Object.keys(record).length === 1 && typeof record["Fn::Sub"] === "string") {
    return (record["Fn::Sub"] as string).replace(/\$\{([^}!]+)\}/g, (_, reference: string) => {
      const dot = reference.indexOf(".");
      const target =
        dot < 0
          ? { logicalId: reference }
          : { logicalId: reference.slice(0, dot), attribute: reference.slice(dot + 1) };
      return attributeOf(target, created);
    });
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(record)) out[key] = resolveIntrinsics(item, created);
  return out;
}

function attributeOf(intrinsic: Intrinsic, created: CreatedResources): string {
  const resource = created[intrinsic.logicalId];
  const what = intrinsic.attribute
    ? `Fn::GetAtt ${intrinsic.logicalId}.${intrinsic.attribute}`
    : `Ref ${intrinsic.logicalId}`;
  if (!resource) throw new Error(`cannot resolve ${what}: no such resource was created`);
  switch (intrinsic.attribute) {
    case undefined:
      return resource.type === "AWS::SQS::Queue" ? resource.url : resource.name;
    case "Arn":
      return resource.arn;
    case "QueueName":
      if (resource.type === "AWS::SQS::Queue") return resource.name;
      break;
    case "QueueUrl":
      if (resource.type === "AWS::SQS::Queue") return resource.url;
      break;
  }
  throw new Error(`cannot resolve ${what}: ${resource.type} has no such attribute locally`);
}

/**
 * Turns an `environment` section (values may be intrinsics, numbers or booleans) into plain
 * environment variables.
 */
export function resolveEnvironment(
  environment: Record<string, unknown>,
  created: CreatedResources,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(environment)) {
    const resolved = resolveIntrinsics(value, created);
    if (resolved === null || resolved === undefined) continue;
    if (typeof resolved === "object") {
      throw new Error(`environment variable ${name} resolves to an object: ${JSON.stringify(resolved)}`);
    }
    out[name] = String(resolved);
  }
  return out;
}

/** Finds the created queue with this ARN. */
export function queueByArn(created: CreatedResources, arn: string): CreatedQueue | undefined {
  return Object.values(created).find(
    (resource): resource is CreatedQueue => resource.type === "AWS::SQS::Queue" && resource.arn === arn,
  );
}

async function createTable(
  logicalId: string,
  properties: Record<string, unknown>,
  options: CreateResourcesOptions,
  log: LocalLog,
): Promise<CreatedTable> {
  const name = (properties.TableName as string | undefined) ?? `${options.namePrefix}-${logicalId}`;
  const billingMode = (properties.BillingMode as CreateTableCommandInput["BillingMode"]) ?? "PROVISIONED";
  const input: CreateTableCommandInput = {
    TableName: name,
    KeySchema: properties.KeySchema as CreateTableCommandInput["KeySchema"],
    AttributeDefinitions: properties.AttributeDefinitions as CreateTableCommandInput["AttributeDefinitions"],
    BillingMode: billingMode,
    ProvisionedThroughput:
      properties.ProvisionedThroughput as CreateTableCommandInput["ProvisionedThroughput"],
    GlobalSecondaryIndexes:
      properties.GlobalSecondaryIndexes as CreateTableCommandInput["GlobalSecondaryIndexes"],
    LocalSecondaryIndexes:
      properties.LocalSecondaryIndexes as CreateTableCommandInput["LocalSecondaryIndexes"],
    StreamSpecification: streamSpecification(properties.StreamSpecification),
  };
  let description = await describeTable(options.dynamodb, name);
  if (description) {
    warnOnSchemaDrift(description, input, log);
    log.debug(`table ${name} exists`);
  } else {
    try {
      await options.dynamodb.send(new CreateTableCommand(input));
      log.info(`created table ${name}`);
    } catch (error) {
      // Another process created it between our describe and create.
      if ((error as Error).name !== "ResourceInUseException") throw error;
    }
    const ttl = properties.TimeToLiveSpecification as
      | { AttributeName?: string; Enabled?: boolean }
      | undefined;
    await waitUntilTableExists(
      { client: options.dynamodb, maxWaitTime: 60, minDelay: 1, maxDelay: 2 },
      { TableName: name },
    );
    if (ttl?.AttributeName && ttl.Enabled) {
      await options.dynamodb.send(
        new UpdateTimeToLiveCommand({
          TableName: name,
          TimeToLiveSpecification: { AttributeName: ttl.AttributeName, Enabled: true },
        }),
      );
    }
    description = await describeTable(options.dynamodb, name);
  }
  if (description?.TableStatus !== "ACTIVE") {
    await waitUntilTableExists(
      { client: options.dynamodb, maxWaitTime: 60, minDelay: 1, maxDelay: 2 },
      { TableName: name },
    );
  }
  return { type: "AWS::DynamoDB::Table", logicalId, name, arn: description?.TableArn ?? tableArn(name) };
}

function streamSpecification(value: unknown): CreateTableCommandInput["StreamSpecification"] {
  if (typeof value !== "object" || value === null) return undefined;
  const viewType = (value as { StreamViewType?: string }).StreamViewType;
  return viewType
    ? {
        StreamEnabled: true,
        StreamViewType: viewType as "NEW_AND_OLD_IMAGES" | "NEW_IMAGE" | "OLD_IMAGE" | "KEYS_ONLY",
      }
    : undefined;
}

async function describeTable(client: DynamoDBClient, name: string): Promise<TableDescription | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: name }))).Table;
  } catch (error) {
    if (error instanceof ResourceNotFoundException || (error as Error).name === "ResourceNotFoundException") {
      return undefined;
    }
    throw error;
  }
}

function warnOnSchemaDrift(existing: TableDescription, wanted: CreateTableCommandInput, log: LocalLog): void {
  const keys = (schema: { AttributeName?: string; KeyType?: string }[] | undefined) =>
    JSON.stringify((schema ?? []).map((key) => `${key.AttributeName}:${key.KeyType}`));
  const indexes = (
    list: { IndexName?: string; KeySchema?: { AttributeName?: string; KeyType?: string }[] }[] | undefined,
  ) => JSON.stringify((list ?? []).map((index) => `${index.IndexName}=${keys(index.KeySchema)}`).sort());
  if (
    keys(existing.KeySchema) !== keys(wanted.KeySchema) ||
    indexes(existing.GlobalSecondaryIndexes) !== indexes(wanted.GlobalSecondaryIndexes)
  ) {
    log.warn(
      `table ${wanted.TableName} already exists with another key schema or indexes than serverless.yml; ` +
        "delete the data folder to recreate it",
    );
  }
}

function tableArn(name: string): string {
  return `arn:aws:dynamodb:ddblocal:000000000000:table/${name}`;
}

async function createQueue(
  logicalId: string,
  properties: Record<string, unknown>,
  options: CreateResourcesOptions,
  log: LocalLog,
): Promise<CreatedQueue> {
  const fifo = properties.FifoQueue === true || properties.FifoQueue === "true";
  const name =
    (properties.QueueName as string | undefined) ??
    `${options.namePrefix}-${logicalId}${fifo ? ".fifo" : ""}`;
  const attributes: Partial<Record<QueueAttributeName, string>> = {};
  for (const [key, value] of Object.entries(properties)) {
    if (key === "QueueName" || key === "Tags" || value === undefined || value === null) continue;
    attributes[key as QueueAttributeName] = typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  Object.assign(attributes, options.queueAttributeOverrides);

  let url: string;
  try {
    url = (await options.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes })))
      .QueueUrl as string;
    log.info(`queue ${name} ready`);
  } catch (error) {
    // The queue exists with other attributes (e.g. kept in a data folder from an older serverless.yml).
    const { name: errorName, Code: code } = error as { name?: string; Code?: string };
    if (!/QueueNameExists|QueueAlreadyExists/.test(`${errorName} ${code}`)) throw error;
    url = (await options.sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl as string;
    const { FifoQueue: _fifo, ...mutable } = attributes;
    await options.sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: mutable }));
    log.info(`queue ${name} updated`);
  }
  const described = await options.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }),
  );
  const arn = described.Attributes?.QueueArn;
  if (!arn) throw new Error(`queue ${name} has no QueueArn`);
  return { type: "AWS::SQS::Queue", logicalId, name, url, arn };
}
