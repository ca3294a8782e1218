/**
 * The simulation's in-memory table answers as DynamoDB does, for the calls the engine makes: a
 * few seeded schedules (all faults) are recorded call by call, with the in-memory answers, and
 * the same calls are replayed in the same order against DynamoDB Local, on a table created from
 * serverless.yml. Every answer must match: items read, query pages, which conditions failed and
 * the ALL_OLD items of a cancelled transaction or a refused single write.
 */
import { DynamoDBClient, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import {
  DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { type CreatedTable, createResources } from "../../infra/local/resources";
import { loadServerlessConfig } from "../../infra/local/serverless-config";
import { canonicalJson } from "../../lib/definition/hash";
import { installVirtualClock } from "../helpers/sim/clock";
import { MemoryTable, type TableCall } from "../helpers/sim/memory-table";
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
    // a single write's refusal carries the item as it was (ALL_OLD): what the engine judges from
    const old = (error as { Item?: Parameters<typeof unmarshall>[0] }).Item;
    return canonicalJson({ error: error.name, item: old ? unmarshall(old) : undefined });
  }
  const { Item, Items } = (call.result ?? {}) as { Item?: unknown; Items?: Record<string, string>[] };
  // an index orders items with the same index key as it likes
  const items = indexQuery
    ? [...(Items ?? [])].sort((a, b) => canonicalJson(a).localeCompare(canonicalJson(b)))
    : Items;
  return canonicalJson({ Item: Item ?? null, Items: items ?? null });
}

describe("the in-memory table answers as DynamoDB Local does", () => {
  it("for the expressions of a concurrency limit, written by hand", async () => {
    const memory = new MemoryTable();
    const key = { pk: `LIMIT#conformance-${Date.now()}`, sk: "LIMIT" };
    const update = (UpdateExpression: string, ConditionExpression?: string, extra: object = {}) =>
      new UpdateCommand({ TableName: SIM_TABLE, Key: key, UpdateExpression, ConditionExpression, ...extra });
    const commands = [
      update(
        "SET active = if_not_exists(active, :zero) + :one, waiting = if_not_exists(waiting, :none), #held = if_not_exists(#held, :zero) + :one",
        "(attribute_not_exists(active) OR active < :max) AND (attribute_not_exists(waiting) OR size(waiting) = :zero)",
        {
          ExpressionAttributeNames: { "#held": "held#run-a" },
          ExpressionAttributeValues: { ":zero": 0, ":one": 1, ":none": [], ":max": 1 },
        },
      ),
      update(
        "SET waiting = list_append(waiting, :entry)",
        "attribute_exists(active) AND (active >= :max OR size(waiting) > :zero)",
        {
          ExpressionAttributeValues: { ":entry": ["a", "b", "c", "d", "e"], ":max": 1, ":zero": 0 },
        },
      ),
      // the indices name elements of the list as read: b and e go, in whatever order they are written
      update("REMOVE waiting[4], waiting[1]", "waiting[4] = :w4 AND waiting[1] = :w1", {
        ExpressionAttributeValues: { ":w4": "e", ":w1": "b" },
      }),
      update(
        "REMOVE waiting[0], waiting[2], #held",
        "waiting[2] = :w2 AND size(waiting) = :n AND #held = :h",
        {
          ExpressionAttributeNames: { "#held": "held#run-a" },
          ExpressionAttributeValues: { ":w2": "d", ":n": 3, ":h": 1 },
        },
      ),
      // refused: a list element moved
      update("REMOVE waiting[0]", "waiting[0] = :w0", { ExpressionAttributeValues: { ":w0": "a" } }),
      // a list containing an element, wherever it is; refused: one that is not in it
      update("SET seen = :one", "contains(waiting, :e) AND contains(pk, :p)", {
        ExpressionAttributeValues: { ":one": 1, ":e": "c", ":p": "LIMIT#" },
      }),
      update("SET seen = :one", "contains(waiting, :e)", {
        ExpressionAttributeValues: { ":one": 1, ":e": "b" },
      }),
      update("SET active = active - :one", "active > :zero AND size(waiting) = :n", {
        ExpressionAttributeValues: { ":one": 1, ":zero": 0, ":n": 1 },
      }),
      new GetCommand({ TableName: SIM_TABLE, Key: key }),
      // a zombie's give-back: `#served + :one` on a count that is gone, next to its own condition that fails
      new TransactWriteCommand({
        TransactItems: [
          {
            ConditionCheck: {
              TableName: SIM_TABLE,
              Key: key,
              ConditionExpression: "active = :nine",
              ExpressionAttributeValues: { ":nine": 9 },
            },
          },
          {
            Update: {
              TableName: SIM_TABLE,
              Key: { ...key, sk: "OTHER" },
              UpdateExpression: "SET #served = #served + :one",
              ExpressionAttributeNames: { "#served": "served#gone" },
              ExpressionAttributeValues: { ":one": 1 },
            },
          },
        ],
      }),
    ];
    const mismatches: string[] = [];
    for (const command of commands) {
      const answers = await Promise.all(
        [() => memory.send(command), () => real.send(retarget(command) as never)].map((send) =>
          send().then(
            (result) => outcome({ result }, false),
            (error: unknown) => outcome({ error }, false),
          ),
        ),
      );
      if (answers[0] !== answers[1])
        mismatches.push(`${JSON.stringify(command.input)}\n  memory: ${answers[0]}\n  dynamo: ${answers[1]}`);
    }
    expect(mismatches).toEqual([]);
    expect(memory.get(SIM_TABLE, key)).toMatchObject({ active: 0, waiting: ["c"], seen: 1 });
  });

  it("for every call of seeded schedules of the engine, in order", async () => {
    const calls: TableCall[] = [];
    const clock = installVirtualClock();
    try {
      // seeds 2 and 3 redrive failed runs: the redrive's transaction, items put back and queued again
      for (const seed of [1, 2, 3])
        await simulate({ seed, faults: FAULT_MODES.all, clock, tableLog: calls, redrive: seed > 1 });
      // schedules with a concurrency limit raced for by several runs: takeSlot, joinWaiting, giveBack
      for (const seed of [4, 5, 6])
        await simulate({
          seed,
          faults: FAULT_MODES.all,
          clock,
          tableLog: calls,
          limited: true,
          redrive: false,
        });
    } finally {
      clock.restore();
    }
    expect(calls.length).toBeGreaterThan(500);
    // the calls cover refusals too: failed conditions, cancelled transactions with their reasons
    const refused = (name: string) =>
      calls.filter((c) => (c.error as Error | undefined)?.name === name).length;
    expect(refused("TransactionCanceledException")).toBeGreaterThan(10);
    expect(refused("ConditionalCheckFailedException")).toBeGreaterThan(10);
    // ...and every kind of write of a concurrency limit, several list elements removed at once among them
    const updates = calls.map((c) => JSON.stringify((c.command as { input: unknown }).input));
    for (const expression of [
      "if_not_exists(#held, :zero) + :one",
      "list_append(waiting, :entry)",
      "size(waiting) = :size",
      "REMOVE waiting[",
    ])
      expect(
        updates.some((u) => u.includes(expression)),
        expression,
      ).toBe(true);
    expect(updates.some((u) => /REMOVE waiting\[\d+\], waiting\[/.test(u))).toBe(true);
    // ...and the writes of a redrive
    for (const expression of [
      "redriveCount = :seen",
      "attemptBase = attempt",
      "redriven = :redriven",
      "attempt = :attempt",
    ])
      expect(
        updates.some((u) => u.includes(expression)),
        expression,
      ).toBe(true);
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
  }, 180_000);
});
