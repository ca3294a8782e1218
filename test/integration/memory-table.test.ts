/**
 * The simulation's in-memory table answers as DynamoDB does, for the calls the engine makes: a
 * few seeded schedules (all faults) are recorded call by call, with the in-memory answers, and
 * the same calls are replayed in the same order against DynamoDB Local, on a table created from
 * serverless.yml. Every answer must match: items read, query pages, which conditions failed and
 * the ALL_OLD items of a cancelled transaction.
 */
import { DynamoDBClient, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { type CreatedTable, createResources } from "../../infra/local/resources";
import { loadServerlessConfig } from "../../infra/local/serverless-config";
import { canonicalJson } from "../../lib/definition/hash";
import { installVirtualClock } from "../helpers/sim/clock";
import type { TableCall } from "../helpers/sim/memory-table";
import { FAULT_MODES, SIM_TABLE, simulate } from "../helpers/sim/simulation";
import { uniqueStage } from "../helpers/stack";

const credentials = { accessKeyId: "local", secretAccessKey: "local" };
let real: DynamoDBDocumentClient;
let tableName: string;

beforeAll(async () => {
  const endpoint = inject("localEndpoints").dynamodb;
  const dynamodb = new DynamoDBClient({ endpoint, region: "us-east-1", credentials });
  const config = loadServerlessConfig({ stage: uniqueStage(), region: "us-east-1" });
  const tables = Object.fromEntries(
    Object.entries(config.resources.Resources).filter(([, r]) => r.Type === "AWS::DynamoDB::Table"),
  );
  const created = await createResources(tables, {
    dynamodb,
    sqs: new SQSClient({ region: "us-east-1", credentials }),
    namePrefix: "conformance",
  });
  tableName = (Object.values(created)[0] as CreatedTable).name;
  real = DynamoDBDocumentClient.from(dynamodb, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
});

/** The same command, aimed at the DynamoDB Local table. */
function retarget(command: unknown): unknown {
  const { constructor: Command, input } = command as {
    constructor: new (input: unknown) => unknown;
    input: unknown;
  };
  const aimed = JSON.parse(JSON.stringify(input), (key, value) =>
    key === "TableName" && value === SIM_TABLE ? tableName : value,
  );
  return new Command(aimed);
}

/** An answer reduced to what the engine reads from it. */
function outcome(call: { result?: unknown; error?: unknown }, indexQuery: boolean): string {
  if (call.error) {
    const error = call.error as Error;
    if (error instanceof TransactionCanceledException)
      return canonicalJson({
        error: error.name,
        reasons: (error.CancellationReasons ?? []).map((r) => ({
          code: r.Code,
          item: r.Item ? unmarshall(r.Item) : undefined,
        })),
      });
    return canonicalJson({ error: error.name });
  }
  const { Item, Items } = (call.result ?? {}) as { Item?: unknown; Items?: Record<string, string>[] };
  // an index orders items with the same index key as it likes
  const items = indexQuery
    ? [...(Items ?? [])].sort((a, b) => canonicalJson(a).localeCompare(canonicalJson(b)))
    : Items;
  return canonicalJson({ Item: Item ?? null, Items: items ?? null });
}

describe("the in-memory table answers as DynamoDB Local does", () => {
  it("for every call of seeded schedules of the engine, in order", async () => {
    const calls: TableCall[] = [];
    const clock = installVirtualClock();
    try {
      for (const seed of [1, 2, 3]) await simulate({ seed, faults: FAULT_MODES.all, clock, tableLog: calls });
    } finally {
      clock.restore();
    }
    expect(calls.length).toBeGreaterThan(500);
    // the calls cover refusals too: failed conditions, cancelled transactions with their reasons
    const refused = (name: string) =>
      calls.filter((c) => (c.error as Error | undefined)?.name === name).length;
    expect(refused("TransactionCanceledException")).toBeGreaterThan(10);
    const mismatches: string[] = [];
    for (const [n, call] of calls.entries()) {
      const indexQuery = Boolean((call.command as { input: { IndexName?: string } }).input.IndexName);
      let answer: { result?: unknown; error?: unknown };
      try {
        answer = { result: await real.send(retarget(call.command) as never) };
      } catch (error) {
        answer = { error };
      }
      const [expected, actual] = [outcome(call, indexQuery), outcome(answer, indexQuery)];
      if (expected !== actual)
        mismatches.push(
          `#${n} ${(call.command as object).constructor.name} ${JSON.stringify((call.command as { input: unknown }).input)}\n  memory: ${expected}\n  dynamo: ${actual}`,
        );
      if (mismatches.length >= 5) break;
    }
    expect(mismatches).toEqual([]);
  }, 120_000);
});
