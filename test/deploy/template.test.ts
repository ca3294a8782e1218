/**
 * The CloudFormation template that `npm run package` (`osls package`) builds from serverless.yml,
 * offline and with no AWS account: functions, queues and their dead-letter queues, one
 * least-privilege role a function, alarms, event sources, the table, the authorizer modes, and that
 * everything the local stack creates from the same file is in the template with the same properties.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { inflateRawSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { creationOrder } from "../../infra/local/resources";
import { loadServerlessConfig, type ServerlessConfig } from "../../infra/local/serverless-config";
import { MAX_RETRY_ATTEMPTS, MAX_TASK_TIMEOUT_SECONDS } from "../../lib/definition/schema";

interface Resource {
  Type: string;
  Properties: Record<string, unknown>;
  DependsOn?: string | string[];
  Condition?: string;
}

interface Template {
  Resources: Record<string, Resource>;
  Conditions?: Record<string, unknown>;
  Outputs?: Record<string, unknown>;
}

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

interface Packaged {
  dir: string;
  template: Template;
  state: { service: { provider: { stage: string; region: string } } };
}

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const STAGE = "ci";
const REGION = "eu-west-1";
const osls = join(repoRoot, "node_modules", "osls", "bin", "serverless.js");
const dirs: string[] = [];

/** Runs `osls package` into a fresh folder, with no AWS credentials and the given environment. */
async function packageService(env: Record<string, string> = {}): Promise<Packaged> {
  const dir = mkdtempSync(join(tmpdir(), "onceflow-package-"));
  dirs.push(dir);
  const childEnv: Record<string, string | undefined> = { ...process.env };
  for (const name of Object.keys(childEnv)) {
    // no credentials, profile or endpoint: packaging must not need any
    if (name.startsWith("AWS_") || name.startsWith("ONCEFLOW_")) delete childEnv[name];
  }
  const args = [osls, "package", "--stage", STAGE, "--region", REGION, "--package", dir];
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: repoRoot,
      env: { ...childEnv, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let text = "";
    child.stdout.on("data", (chunk) => {
      text += chunk;
    });
    child.stderr.on("data", (chunk) => {
      text += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(text) : reject(new Error(`osls package exited ${code}:\n${text}`)),
    );
  });
  expect(output).toContain("Service packaged");
  const read = (name: string) => JSON.parse(readFileSync(join(dir, name), "utf8"));
  return {
    dir,
    template: read("cloudformation-template-update-stack.json") as Template,
    state: read("serverless-state.json"),
  };
}

let packaged: Packaged;
let template: Template;
let resources: Record<string, Resource>;
let local: ServerlessConfig;

beforeAll(async () => {
  packaged = await packageService();
  template = packaged.template;
  resources = template.Resources;
  local = loadServerlessConfig({ stage: STAGE, region: REGION, env: {} });
}, 120_000);

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const getAtt = (logicalId: string, attribute = "Arn") => ({ "Fn::GetAtt": [logicalId, attribute] });
const ref = (logicalId: string) => ({ Ref: logicalId });

function resource(logicalId: string, type?: string): Resource {
  const found = resources[logicalId];
  if (!found) throw new Error(`no resource ${logicalId} in the template`);
  if (type) expect(found.Type).toBe(type);
  return found;
}

function ofType(type: string): [string, Resource][] {
  return Object.entries(resources).filter(([, r]) => r.Type === type);
}

const functionId = (name: string) => `${name[0]?.toUpperCase()}${name.slice(1)}LambdaFunction`;
const functionNames = ["api", "worker", "advance", "sweeper"] as const;

/** The statements of the role a function runs with (its own role, given as `Fn::GetAtt [Role, Arn]`). */
function roleOf(name: string): { roleId: string; statements: Statement[] } {
  const role = resource(functionId(name), "AWS::Lambda::Function").Properties.Role as {
    "Fn::GetAtt": [string, string];
  };
  const roleId = role["Fn::GetAtt"][0];
  const properties = resource(roleId, "AWS::IAM::Role").Properties as {
    Policies: { PolicyDocument: { Statement: Statement[] } }[];
    ManagedPolicyArns?: unknown;
  };
  expect(properties.ManagedPolicyArns).toBeUndefined();
  return { roleId, statements: properties.Policies.flatMap((policy) => policy.PolicyDocument.Statement) };
}

/** `{resource (as JSON): sorted actions}` of a role's Allow statements. */
function grants(statements: Statement[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const statement of statements) {
    expect(statement.Effect).toBe("Allow");
    const actions = [statement.Action].flat();
    for (const target of [statement.Resource].flat()) {
      const key = JSON.stringify(target);
      out[key] = [...(out[key] ?? []), ...actions].sort();
    }
  }
  return out;
}

const tableActions = [
  "dynamodb:ConditionCheckItem",
  "dynamodb:GetItem",
  "dynamodb:PutItem",
  "dynamodb:Query",
  "dynamodb:UpdateItem",
];
const logActions = ["logs:CreateLogStream", "logs:PutLogEvents"];
const key = (value: unknown) => JSON.stringify(value);

describe("packaging", () => {
  it("builds one zip a function, named after it, with the stage and region given", () => {
    expect(packaged.state.service.provider.stage).toBe(STAGE);
    expect(packaged.state.service.provider.region).toBe(REGION);
    for (const name of functionNames) {
      const code = resource(functionId(name)).Properties.Code as { S3Key: string };
      expect(code.S3Key.endsWith(`/${name}.zip`)).toBe(true);
      // Lambda takes at most 50 MB zipped when uploaded directly
      const size = statSync(join(packaged.dir, `${name}.zip`)).size;
      expect(size).toBeGreaterThan(0);
      expect(size).toBeLessThan(50 * 1024 * 1024);
    }
    // no shared role left for osls to create: each function has its own
    expect(resources.IamRoleLambdaExecution).toBeUndefined();
  });

  it("bundles a self-contained handler: the api's zip alone answers GET /health and serves the console", async () => {
    const dir = join(packaged.dir, "unzipped-api");
    const files = readZip(join(packaged.dir, "api.zip"));
    // the web console's build (infra/serverless-console.cjs builds it before packaging): its page
    // and the hashed script and stylesheet it names, nothing else
    const consoleFiles = Object.keys(files).filter((name) => name.startsWith("console/"));
    expect(Object.keys(files).sort()).toEqual(
      ["functions/api.mjs", "functions/api.mjs.map", ...consoleFiles].sort(),
    );
    expect(consoleFiles.map((name) => name.replace(/-\w+\./, "-HASH.")).sort()).toEqual([
      "console/dist/app-HASH.js",
      "console/dist/index.html",
      "console/dist/style-HASH.css",
    ]);
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), content);
    }
    // imported from a temporary folder, far from node_modules: nothing may be left external
    const module = (await import(pathToFileURL(join(dir, "functions/api.mjs")).href)) as {
      handler: (
        event: unknown,
        context: unknown,
      ) => Promise<{
        statusCode: number;
        body: string;
        headers?: Record<string, string>;
        isBase64Encoded?: boolean;
      }>;
    };
    const get = (routeKey: string, path: string, pathParameters?: Record<string, string>) =>
      module.handler(
        {
          version: "2.0",
          routeKey,
          rawPath: path,
          rawQueryString: "",
          headers: {},
          requestContext: { http: { method: "GET", path }, requestId: "test" },
          ...(pathParameters ? { pathParameters } : {}),
          isBase64Encoded: false,
        },
        { awsRequestId: "test", functionName: "onceflow-ci-api", getRemainingTimeInMillis: () => 29_000 },
      );
    expect((await get("GET /health", "/health")).statusCode).toBe(200);
    // the console's page, from the zip (API Gateway sends /console/ to $default: no {file+} to match)
    const page = await get("$default", "/console/");
    expect(page.statusCode).toBe(200);
    expect(page.headers?.["content-type"]).toContain("text/html");
    const html = Buffer.from(page.body, page.isBase64Encoded ? "base64" : "utf8").toString("utf8");
    const script = /src="(app-\w+\.js)"/.exec(html)?.[1] as string;
    expect(files[`console/dist/${script}`]).toBeDefined();
    const asset = await get("GET /console/{file+}", `/console/${script}`, { file: script });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers?.["content-type"]).toContain("javascript");
    // (importing the whole bundle takes a few seconds on a loaded 2-core machine)
  }, 30_000);
});

describe("functions", () => {
  it.each(functionNames)(
    "%s: nodejs22.x on arm64, the handler, memory and timeout of serverless.yml",
    (name) => {
      const fn = local.functions[name];
      expect(fn).toBeDefined();
      const properties = resource(functionId(name), "AWS::Lambda::Function").Properties;
      expect(properties.Runtime).toBe("nodejs22.x");
      expect(properties.Architectures).toEqual(["arm64"]);
      expect(properties.Handler).toBe(fn?.handler);
      expect(properties.Handler).toBe(`functions/${name}.handler`);
      expect(properties.Timeout).toBe(fn?.timeout);
      expect(properties.MemorySize).toBe(fn?.memorySize);
      expect(properties.FunctionName).toBe(`onceflow-${STAGE}-${name}`);
      const variables = (properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(variables).toEqual({ ...local.provider.environment, ...fn?.environment });
    },
  );

  it("gives the worker more time than the longest task", () => {
    expect(local.functions.worker?.timeout).toBeGreaterThan(MAX_TASK_TIMEOUT_SECONDS);
  });

  it("serves every route of the local stack through the api function", () => {
    const routes = ofType("AWS::ApiGatewayV2::Route").map(([, r]) => r.Properties.RouteKey);
    const localRoutes = (local.functions.api?.events ?? []).flatMap((e) =>
      e.kind === "httpApi" ? [e.routeKey] : [],
    );
    expect(routes.sort()).toEqual(localRoutes.sort());
    expect(routes).toContain("$default");
  });

  it("runs the sweeper on the schedule of serverless.yml, without retries", () => {
    const rules = ofType("AWS::Events::Rule");
    expect(rules).toHaveLength(1);
    const schedule = local.functions.sweeper?.events.find((e) => e.kind === "schedule");
    expect(rules[0]?.[1].Properties.ScheduleExpression).toBe(
      schedule?.kind === "schedule" ? schedule.expressions[0] : undefined,
    );
    const invokeConfig = ofType("AWS::Lambda::EventInvokeConfig");
    expect(invokeConfig.map(([, r]) => r.Properties)).toContainEqual(
      expect.objectContaining({ FunctionName: ref(functionId("sweeper")), MaximumRetryAttempts: 0 }),
    );
  });
});

describe("queues and event sources", () => {
  const pairs = [
    { queue: "TasksQueue", dlq: "TasksDeadLetterQueue", fn: "worker", batchSize: 1 },
    { queue: "CompletionsQueue", dlq: "CompletionsDeadLetterQueue", fn: "advance", batchSize: 10 },
  ] as const;

  it.each(pairs)("$queue is FIFO with a FIFO dead-letter queue", ({ queue, dlq }) => {
    const properties = resource(queue, "AWS::SQS::Queue").Properties;
    expect(properties.FifoQueue).toBe(true);
    expect(properties.QueueName).toMatch(new RegExp(`^onceflow-${STAGE}-.*\\.fifo$`));
    const redrive = properties.RedrivePolicy as { deadLetterTargetArn: unknown; maxReceiveCount: number };
    expect(redrive.deadLetterTargetArn).toEqual(getAtt(dlq));
    expect(redrive.maxReceiveCount).toBeGreaterThanOrEqual(10);
    const dead = resource(dlq, "AWS::SQS::Queue").Properties;
    expect(dead.FifoQueue).toBe(true);
    expect(dead.QueueName).toMatch(/-dlq\.fifo$/);
    expect(dead.MessageRetentionPeriod).toBe(1_209_600);
  });

  it("ticks the sweeper through a standard queue whose visibility is the sweeper's timeout, one tick a call", () => {
    const queue = resource("SweepQueue", "AWS::SQS::Queue").Properties;
    expect(queue.FifoQueue).toBeUndefined(); // FIFO queues take no delay per message
    // AWS refuses an event source whose queue's visibility is shorter than the function's timeout;
    // a tick whose sweeper died comes back after it and takes the chain over (tick.ts)
    expect(queue.VisibilityTimeout).toBe(local.functions.sweeper?.timeout);
    const mappings = ofType("AWS::Lambda::EventSourceMapping").filter(
      ([, r]) => key(r.Properties.EventSourceArn) === key(getAtt("SweepQueue")),
    );
    expect(mappings).toHaveLength(1);
    expect(mappings[0]?.[1].Properties).toMatchObject({
      FunctionName: getAtt(functionId("sweeper")),
      BatchSize: 1,
    });
  });

  it("lets a task message be received well over twice per attempt before it is dead-lettered", () => {
    const redrive = resource("TasksQueue").Properties.RedrivePolicy as { maxReceiveCount: number };
    expect(redrive.maxReceiveCount).toBeGreaterThan(2 * MAX_RETRY_ATTEMPTS + 10);
  });

  it.each(pairs)(
    "$fn reads $queue: batch size, no window, batch item failures, visibility ≥ 6 × timeout",
    ({ queue, fn, batchSize }) => {
      const mappings = ofType("AWS::Lambda::EventSourceMapping").filter(
        ([, r]) => key(r.Properties.EventSourceArn) === key(getAtt(queue)),
      );
      expect(mappings).toHaveLength(1);
      const properties = mappings[0]?.[1].Properties ?? {};
      expect(properties.FunctionName).toEqual(getAtt(functionId(fn)));
      expect(properties.FunctionResponseTypes).toEqual(["ReportBatchItemFailures"]);
      expect(properties.BatchSize).toBe(batchSize);
      // Lambda supports no batching window on FIFO queues
      expect(properties.MaximumBatchingWindowInSeconds).toBeUndefined();
      const localEvent = local.functions[fn]?.events.find((e) => e.kind === "sqs");
      expect(localEvent?.kind === "sqs" && localEvent.batchSize).toBe(batchSize);
      expect(properties.ScalingConfig).toEqual({
        MaximumConcurrency: localEvent?.kind === "sqs" ? localEvent.maximumConcurrency : undefined,
      });
      const timeout = resource(functionId(fn)).Properties.Timeout as number;
      expect(resource(queue).Properties.VisibilityTimeout as number).toBeGreaterThanOrEqual(6 * timeout);
    },
  );

  it("has an alarm on each dead-letter queue as soon as one message is in it", () => {
    const alarms = ofType("AWS::CloudWatch::Alarm").map(([, r]) => r.Properties);
    for (const dlq of ["TasksDeadLetterQueue", "CompletionsDeadLetterQueue"]) {
      expect(alarms).toContainEqual(
        expect.objectContaining({
          Namespace: "AWS/SQS",
          MetricName: "ApproximateNumberOfMessagesVisible",
          Dimensions: [{ Name: "QueueName", Value: getAtt(dlq, "QueueName") }],
          Threshold: 0,
          ComparisonOperator: "GreaterThanThreshold",
          AlarmActions: [ref("AlarmTopic")],
        }),
      );
    }
    resource("AlarmTopic", "AWS::SNS::Topic");
    // the e-mail subscription exists only when ONCEFLOW_ALARM_EMAIL was set
    expect(resource("AlarmEmailSubscription").Condition).toBe("HasAlarmEmail");
    expect(template.Conditions?.HasAlarmEmail).toEqual({ "Fn::Not": [{ "Fn::Equals": ["", ""] }] });
  });
});

describe("the table", () => {
  it("is on demand, with point-in-time recovery, TTL on expiresAt, the sweep index and the list index", () => {
    const properties = resource("OnceflowTable", "AWS::DynamoDB::Table").Properties;
    expect(properties.TableName).toBe(`onceflow-${STAGE}`);
    expect(properties.BillingMode).toBe("PAY_PER_REQUEST");
    expect(properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(properties.TimeToLiveSpecification).toEqual({ AttributeName: "expiresAt", Enabled: true });
    expect(properties.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: "sweep",
        KeySchema: [
          { AttributeName: "sweepShard", KeyType: "HASH" },
          { AttributeName: "sweepAt", KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: "KEYS_ONLY" },
      },
      {
        IndexName: "list",
        KeySchema: [
          { AttributeName: "listPk", KeyType: "HASH" },
          { AttributeName: "listSk", KeyType: "RANGE" },
        ],
        // written once, with the run: a projected status would cost a write at every change
        Projection: { ProjectionType: "KEYS_ONLY" },
      },
    ]);
  });
});

describe("least privilege", () => {
  const table = getAtt("OnceflowTable");
  const sweepIndex = { "Fn::Join": ["/", [getAtt("OnceflowTable"), "index", "sweep"]] };
  const listIndex = { "Fn::Join": ["/", [getAtt("OnceflowTable"), "index", "list"]] };
  const expected: Record<(typeof functionNames)[number], Record<string, string[]>> = {
    api: {
      [key(getAtt("ApiLogGroup"))]: logActions,
      // GET /runs reads the summaries of what the list index found
      [key(table)]: [...tableActions, "dynamodb:BatchGetItem"].sort(),
      [key(listIndex)]: ["dynamodb:Query"],
      [key(getAtt("TasksQueue"))]: ["sqs:SendMessage"],
      [key(getAtt("CompletionsQueue"))]: ["sqs:SendMessage"],
      [key(getAtt("SweepQueue"))]: ["sqs:SendMessage"],
    },
    worker: {
      [key(getAtt("WorkerLogGroup"))]: logActions,
      [key(table)]: tableActions,
      [key(getAtt("TasksQueue"))]: [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
      ],
      [key(getAtt("CompletionsQueue"))]: ["sqs:SendMessage"],
      [key(getAtt("SweepQueue"))]: ["sqs:SendMessage"],
    },
    advance: {
      [key(getAtt("AdvanceLogGroup"))]: logActions,
      [key(table)]: tableActions,
      [key(getAtt("CompletionsQueue"))]: [
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
      ],
      [key(getAtt("TasksQueue"))]: ["sqs:SendMessage"],
      [key(getAtt("SweepQueue"))]: ["sqs:SendMessage"],
    },
    sweeper: {
      [key(getAtt("SweeperLogGroup"))]: logActions,
      [key(sweepIndex)]: ["dynamodb:Query"],
      [key(table)]: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
      [key(getAtt("TasksQueue"))]: ["sqs:SendMessage"],
      [key(getAtt("CompletionsQueue"))]: ["sqs:SendMessage"],
      [key(getAtt("SweepQueue"))]: [
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
      ],
    },
  };

  it.each(functionNames)("%s has its own role with exactly the calls it makes", (name) => {
    const { statements } = roleOf(name);
    expect(grants(statements)).toEqual(expected[name]);
  });

  it("gives every function a different role that only Lambda can assume", () => {
    const roles = functionNames.map((name) => roleOf(name).roleId);
    expect(new Set(roles).size).toBe(functionNames.length);
    expect(
      ofType("AWS::IAM::Role")
        .map(([id]) => id)
        .sort(),
    ).toEqual([...roles].sort());
    for (const roleId of roles) {
      expect(resource(roleId).Properties.AssumeRolePolicyDocument).toEqual({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" },
        ],
      });
    }
  });

  it("grants no wildcard action or resource, and never DeleteItem, Scan or a batch write", () => {
    for (const name of functionNames) {
      for (const statement of roleOf(name).statements) {
        for (const action of [statement.Action].flat()) {
          expect(action).not.toContain("*");
          expect(["dynamodb:DeleteItem", "dynamodb:Scan", "dynamodb:BatchWriteItem"]).not.toContain(action);
        }
        for (const target of [statement.Resource].flat()) {
          // every resource is a reference to one of the stack's own resources, never a string
          expect(typeof target).toBe("object");
        }
      }
    }
  });
});

describe("one source of truth", () => {
  it("has in the template every table and queue the local stack creates, with the same properties", () => {
    const created = creationOrder(local.resources.Resources);
    expect(created.sort()).toEqual(
      [
        "CompletionsDeadLetterQueue",
        "CompletionsQueue",
        "OnceflowTable",
        "SweepQueue",
        "TasksDeadLetterQueue",
        "TasksQueue",
      ].sort(),
    );
    for (const logicalId of created) {
      const wanted = local.resources.Resources[logicalId];
      const found = resource(logicalId);
      expect(found.Type).toBe(wanted?.Type);
      expect(found.Properties).toEqual(wanted?.Properties);
    }
  });

  it("has every other resource of serverless.yml too", () => {
    for (const [logicalId, wanted] of Object.entries(local.resources.Resources)) {
      expect(resource(logicalId).Type).toBe(wanted.Type);
    }
  });
});

describe("authorizer modes", () => {
  let iam: Template;
  let jwt: Template;

  beforeAll(async () => {
    // one after the other: both build in the same .esbuild folder
    iam = (await packageService({ ONCEFLOW_AUTHORIZER: "iam" })).template;
    jwt = (
      await packageService({
        ONCEFLOW_AUTHORIZER: "jwt",
        ONCEFLOW_JWT_ISSUER: "https://issuer.example.com/",
        ONCEFLOW_JWT_AUDIENCE: "onceflow-client",
        ONCEFLOW_ALARM_EMAIL: "ops@example.com",
      })
    ).template;
  }, 120_000);

  const routes = (t: Template) =>
    Object.fromEntries(
      Object.values(t.Resources)
        .filter((r) => r.Type === "AWS::ApiGatewayV2::Route")
        .map((r) => [r.Properties.RouteKey as string, r.Properties]),
    );

  it("none (the default) leaves every route open", () => {
    for (const route of Object.values(routes(template))) expect(route.AuthorizationType).toBeUndefined();
    expect(ofType("AWS::ApiGatewayV2::Authorizer")).toEqual([]);
  });

  it("iam protects every route but GET /health with SigV4", () => {
    for (const [routeKey, route] of Object.entries(routes(iam))) {
      expect(route.AuthorizationType).toBe(routeKey === "GET /health" ? undefined : "AWS_IAM");
    }
  });

  it("jwt protects every route but GET /health with the issuer and audience given", () => {
    const authorizers = Object.entries(jwt.Resources).filter(
      ([, r]) => r.Type === "AWS::ApiGatewayV2::Authorizer",
    );
    expect(authorizers).toHaveLength(1);
    const [authorizerId, authorizer] = authorizers[0] as [string, Resource];
    expect(authorizer.Properties).toMatchObject({
      AuthorizerType: "JWT",
      IdentitySource: ["$request.header.Authorization"],
      JwtConfiguration: { Issuer: "https://issuer.example.com/", Audience: ["onceflow-client"] },
    });
    for (const [routeKey, route] of Object.entries(routes(jwt))) {
      if (routeKey === "GET /health") {
        expect(route.AuthorizationType).toBeUndefined();
      } else {
        expect(route.AuthorizationType).toBe("JWT");
        expect(route.AuthorizerId).toEqual(ref(authorizerId));
      }
    }
    expect(jwt.Conditions?.HasAlarmEmail).toEqual({ "Fn::Not": [{ "Fn::Equals": ["ops@example.com", ""] }] });
  });
});

/** The files of a zip archive (stored or deflated entries, as osls writes them). */
function readZip(path: string): Record<string, Buffer> {
  const zip = readFileSync(path);
  // the end of central directory record: its signature, searched from the end
  let end = zip.length - 22;
  while (end >= 0 && zip.readUInt32LE(end) !== 0x06054b50) end--;
  if (end < 0) throw new Error(`${path} is not a zip file`);
  const count = zip.readUInt16LE(end + 10);
  let entry = zip.readUInt32LE(end + 16);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < count; i++) {
    const method = zip.readUInt16LE(entry + 10);
    const compressedSize = zip.readUInt32LE(entry + 20);
    const nameLength = zip.readUInt16LE(entry + 28);
    const extraLength = zip.readUInt16LE(entry + 30);
    const commentLength = zip.readUInt16LE(entry + 32);
    const localHeader = zip.readUInt32LE(entry + 42);
    const name = zip.toString("utf8", entry + 46, entry + 46 + nameLength);
    const dataStart =
      localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
    const data = zip.subarray(dataStart, dataStart + compressedSize);
    if (!name.endsWith("/")) files[name] = method === 0 ? data : inflateRawSync(data);
    entry += 46 + nameLength + extraLength + commentLength;
  }
  return files;
}
