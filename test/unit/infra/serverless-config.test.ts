// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are Serverless and CloudFormation variables.
import { describe, expect, it } from "vitest";
import {
  type CreatedResources,
  creationOrder,
  resolveEnvironment,
  resolveIntrinsics,
} from "../../../infra/local/resources";
import { loadServerlessConfig, parseServerlessConfig } from "../../../infra/local/serverless-config";
import { parseRate } from "../../../infra/local/stack";

describe("serverless.yml of the repository", () => {
  const config = loadServerlessConfig({ stage: "t1", region: "eu-west-1" });

  it("resolves the stage, region and the names built from them", () => {
    expect(config.service).toBe("onceflow");
    expect(config.stage).toBe("t1");
    expect(config.region).toBe("eu-west-1");
    expect(config.provider.stage).toBe("t1");
    const resources = config.resources.Resources;
    expect(resources.OnceflowTable?.Properties?.TableName).toBe("onceflow-t1");
    expect(resources.TasksQueue?.Properties?.QueueName).toBe("onceflow-t1-tasks.fifo");
    expect(resources.CompletionsDeadLetterQueue?.Properties?.QueueName).toBe(
      "onceflow-t1-completions-dlq.fifo",
    );
  });

  it("defaults to the dev stage and us-east-1 without options", () => {
    const dev = loadServerlessConfig();
    expect(dev.stage).toBe("dev");
    expect(dev.region).toBe("us-east-1");
    expect(dev.resources.Resources.OnceflowTable?.Properties?.TableName).toBe("onceflow-dev");
  });

  it("types functions with handlers, timeouts and events", () => {
    const api = config.functions.api;
    expect(api?.handler).toBe("functions/api.handler");
    expect(api?.timeout).toBe(29);
    expect(api?.events).toContainEqual({ kind: "httpApi", routeKey: "PUT /workflows/{name}" });
    expect(api?.events).toContainEqual({ kind: "httpApi", routeKey: "$default" });
    expect(config.functions.worker?.events).toEqual([
      {
        kind: "sqs",
        arn: { "Fn::GetAtt": ["TasksQueue", "Arn"] },
        batchSize: 1,
        maximumBatchingWindow: undefined,
        maximumConcurrency: 16,
        functionResponseType: "ReportBatchItemFailures",
        enabled: true,
      },
    ]);
    expect(config.functions.sweeper?.events).toEqual([
      { kind: "schedule", expressions: ["rate(1 minute)"], enabled: true },
      {
        kind: "sqs",
        arn: { "Fn::GetAtt": ["SweepQueue", "Arn"] },
        batchSize: 1,
        maximumBatchingWindow: undefined,
        maximumConcurrency: 2,
        functionResponseType: undefined,
        enabled: true,
      },
    ]);
  });

  it("keeps intrinsics in provider.environment for later", () => {
    expect(config.provider.environment.TABLE_NAME).toEqual({ Ref: "OnceflowTable" });
    expect(config.provider.environment.NODE_OPTIONS).toBe("--enable-source-maps");
  });

  it("orders queues after the dead-letter queues they point at", () => {
    const order = creationOrder(config.resources.Resources);
    expect(order.indexOf("TasksDeadLetterQueue")).toBeLessThan(order.indexOf("TasksQueue"));
    expect(order.indexOf("CompletionsDeadLetterQueue")).toBeLessThan(order.indexOf("CompletionsQueue"));
    expect(order).toHaveLength(6);
  });
});

describe("variable resolution", () => {
  const parse = (yaml: string, options = {}) => parseServerlessConfig(`service: svc\n${yaml}`, options);

  it("resolves opt, sls, self and env with fallbacks", () => {
    const config = parse(
      [
        "provider:",
        "  name: aws",
        "  stage: ${opt:stage, 'dev'}",
        '  region: ${opt:region, "us-east-1"}',
        "  environment:",
        "    A: ${env:ONCEFLOW_TEST_SET, 'unused'}",
        "    B: ${env:ONCEFLOW_TEST_UNSET, 'fallback'}",
        "    C: ${self:service}-${sls:stage}-${aws:region}",
        "    D: ${self:custom.nested.value}",
        "    E: ${env:ONCEFLOW_TEST_UNSET, ${opt:stage, 'x'}}",
        "    F: ${self:custom.count}",
        "    G: ${env:ONCEFLOW_TEST_UNSET, self:custom.count}",
        "    H: ${self:custom.${sls:stage}Name}",
        "custom:",
        "  nested: { value: '${self:provider.stage}!' }",
        "  count: 3",
        "  prodName: production",
      ].join("\n"),
      { stage: "prod", region: "eu-central-1", env: { ONCEFLOW_TEST_SET: "from-env" } },
    );
    expect(config.provider.environment).toEqual({
      A: "from-env",
      B: "fallback",
      C: "svc-prod-eu-central-1",
      D: "prod!",
      E: "prod",
      F: 3,
      G: 3,
      H: "production",
    });
  });

  it("uses provider.stage for ${sls:stage} when no stage option is given", () => {
    const config = parse("provider:\n  name: aws\n  stage: staging\ncustom:\n  s: ${sls:stage}\n", {
      env: {},
    });
    expect(config.stage).toBe("staging");
  });

  it("keeps the type of a value that is exactly one variable", () => {
    const config = parse("provider:\n  name: aws\n  timeout: ${self:custom.t}\ncustom:\n  t: 12\n");
    expect(config.provider.timeout).toBe(12);
  });

  it("fails clearly on a missing value, an unknown source and a cycle", () => {
    expect(() =>
      parse("provider:\n  environment:\n    X: ${env:ONCEFLOW_SURELY_UNSET}\n", { env: {} }),
    ).toThrow(/cannot resolve variable at "provider.environment.X"/);
    expect(() => parse("provider:\n  environment:\n    X: ${ssm:/a/b}\n")).toThrow(/"ssm" is not supported/);
    expect(() => parse("custom:\n  a: ${self:custom.b}\n  b: ${self:custom.a}\n")).toThrow(/circular/);
  });

  it("parses every httpApi form", () => {
    const config = parse(
      [
        "functions:",
        "  f:",
        "    handler: f.handler",
        "    events:",
        "      - httpApi: '*'",
        "      - httpApi: 'get /a/{b}'",
        "      - httpApi: { method: '*', path: /c }",
        "      - httpApi: { path: /d }",
      ].join("\n"),
    );
    expect(
      config.functions.f?.events.map((event) => (event.kind === "httpApi" ? event.routeKey : "")),
    ).toEqual(["$default", "GET /a/{b}", "ANY /c", "ANY /d"]);
    expect(config.functions.f?.timeout).toBe(6);
  });
});

describe("intrinsic resolution", () => {
  const created: CreatedResources = {
    Table: { type: "AWS::DynamoDB::Table", logicalId: "Table", name: "t", arn: "arn:table/t" },
    Queue: {
      type: "AWS::SQS::Queue",
      logicalId: "Queue",
      name: "q.fifo",
      url: "http://localhost/000000000000/q.fifo",
      arn: "arn:aws:sqs:us-east-1:000000000000:q.fifo",
    },
  };

  it("resolves Ref to a table name or a queue URL, and GetAtt Arn", () => {
    expect(resolveIntrinsics({ Ref: "Table" }, created)).toBe("t");
    expect(resolveIntrinsics({ Ref: "Queue" }, created)).toBe("http://localhost/000000000000/q.fifo");
    expect(resolveIntrinsics({ "Fn::GetAtt": ["Queue", "Arn"] }, created)).toBe(
      "arn:aws:sqs:us-east-1:000000000000:q.fifo",
    );
    expect(resolveIntrinsics({ "Fn::GetAtt": "Table.Arn" }, created)).toBe("arn:table/t");
    expect(resolveIntrinsics({ "Fn::GetAtt": ["Queue", "QueueName"] }, created)).toBe("q.fifo");
  });

  it("resolves nested intrinsics, Fn::Join and Fn::Sub, and leaves plain values alone", () => {
    expect(
      resolveIntrinsics(
        {
          deadLetterTargetArn: { "Fn::GetAtt": ["Queue", "Arn"] },
          maxReceiveCount: 3,
          list: [{ Ref: "Table" }],
        },
        created,
      ),
    ).toEqual({
      deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:q.fifo",
      maxReceiveCount: 3,
      list: ["t"],
    });
    expect(resolveIntrinsics({ "Fn::Join": ["/", [{ Ref: "Table" }, "x"]] }, created)).toBe("t/x");
    expect(resolveIntrinsics({ "Fn::Sub": "${Table}:${Queue.Arn}" }, created)).toBe(
      "t:arn:aws:sqs:us-east-1:000000000000:q.fifo",
    );
  });

  it("turns an environment section into plain strings", () => {
    expect(
      resolveEnvironment({ TABLE_NAME: { Ref: "Table" }, N: 5, B: true, S: "s", NONE: null }, created),
    ).toEqual({ TABLE_NAME: "t", N: "5", B: "true", S: "s" });
  });

  it("throws on a resource that was not created or an unknown attribute", () => {
    expect(() => resolveIntrinsics({ Ref: "Missing" }, created)).toThrow(/Ref Missing/);
    expect(() => resolveIntrinsics({ "Fn::GetAtt": ["Table", "StreamArn"] }, created)).toThrow(
      /no such attribute/,
    );
  });
});

describe("schedule events", () => {
  it("parses schedule rates", () => {
    expect(parseRate("rate(1 minute)")).toBe(60_000);
    expect(parseRate("rate(30 seconds)")).toBe(30_000);
    expect(parseRate("rate(2 hours)")).toBe(7_200_000);
    expect(parseRate("cron(0 12 * * ? *)")).toBeUndefined();
  });
});
