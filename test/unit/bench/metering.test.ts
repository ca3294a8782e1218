import "../../helpers/unit-env";
import { TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import { db, sqs } from "../../../lib/clients";
import {
  attachMeter,
  type IndexSpec,
  indexWriteUnits,
  itemSize,
  Meter,
  meterMiddleware,
  transactionKeys,
  transactionWriteUnits,
  unitsOf,
} from "../../../lib/metering";

describe("unitsOf", () => {
  it("reads read and write units, from one ConsumedCapacity or a list of them", () => {
    expect(unitsOf({ CapacityUnits: 1 }, true)).toEqual({ read: 1, write: 0 });
    expect(unitsOf({ CapacityUnits: 3 }, false)).toEqual({ read: 0, write: 3 });
    expect(
      unitsOf([{ WriteCapacityUnits: 4 }, { ReadCapacityUnits: 2, WriteCapacityUnits: 1 }], false),
    ).toEqual({
      read: 2,
      write: 5,
    });
    expect(unitsOf(undefined, true)).toEqual({ read: 0, write: 0 });
  });
});

describe("item sizes and transaction units, by DynamoDB's documented rules", () => {
  it("counts names and values: strings in UTF-8, numbers by significant digits, maps and lists with overhead", () => {
    expect(itemSize({ pk: { S: "abc" } })).toBe(5);
    expect(itemSize({ n: { N: "12345" } })).toBe(1 + 4);
    expect(itemSize({ b: { BOOL: true }, z: { NULL: true } })).toBe(4);
    expect(itemSize({ m: { M: { a: { S: "é" } } } })).toBe(1 + 3 + 1 + 1 + 2);
    expect(itemSize({ l: { L: [{ S: "x" }, { S: "y" }] } })).toBe(1 + 3 + 2 + 2);
  });

  it("charges 2 write units per item per started KB, at least 2 per item", () => {
    expect(transactionWriteUnits([10, 1024, 1025])).toBe(2 + 2 + 4);
    expect(transactionWriteUnits([])).toBe(0);
  });

  it("finds the key of every item a transaction writes or checks, and which it writes", () => {
    expect(
      transactionKeys({
        TransactItems: [
          { ConditionCheck: { Key: { pk: "R", sk: "RUN" } } },
          { Put: { Item: { pk: "R", sk: "EVT#1", type: "x" } } },
          { Update: { Key: { pk: { S: "R" }, sk: { S: "TASK#a" } } } },
        ],
      }),
    ).toEqual([
      { key: { pk: "R", sk: "RUN" }, writes: false },
      { key: { pk: "R", sk: "EVT#1" }, writes: true },
      { key: { pk: { S: "R" }, sk: { S: "TASK#a" } }, writes: true },
    ]);
  });
});

describe("the meter middleware", () => {
  const call = (meter: Meter, service: "dynamodb" | "sqs", commandName: string, output: unknown) => {
    const input: Record<string, unknown> = {};
    const next = async (args: { input: Record<string, unknown> }) => {
      if (output instanceof Error) throw output;
      return { output: { ...(output as object), seenInput: { ...args.input } } };
    };
    return meterMiddleware(meter, service)(next, { commandName })({ input });
  };

  it("asks DynamoDB for the consumed capacity and sums it by caller and command", async () => {
    let label = "worker";
    const meter = new Meter(() => label);
    const result = await call(meter, "dynamodb", "GetItemCommand", {
      ConsumedCapacity: { CapacityUnits: 1 },
    });
    expect((result.output as { seenInput: unknown }).seenInput).toEqual({ ReturnConsumedCapacity: "TOTAL" });
    await call(meter, "dynamodb", "PutItemCommand", { ConsumedCapacity: { CapacityUnits: 2 } });
    label = "advance";
    await call(meter, "dynamodb", "PutItemCommand", { ConsumedCapacity: { CapacityUnits: 3 } });
    expect(meter.totals()).toMatchObject({ readUnits: 1, writeUnits: 5, dynamodbCalls: 3 });
    expect(meter.totals((l) => l === "worker")).toMatchObject({ readUnits: 1, writeUnits: 2 });
  });

  it("estimates failed conditional writes and cancelled transactions at DynamoDB's minimum", async () => {
    const meter = new Meter();
    const failed = Object.assign(new Error("x"), { name: "ConditionalCheckFailedException" });
    await expect(call(meter, "dynamodb", "UpdateItemCommand", failed)).rejects.toThrow();
    expect(meter.totals()).toMatchObject({ writeUnits: 1, failedWrites: 1 });
  });

  it("counts SQS requests, and empty receives apart", async () => {
    const meter = new Meter();
    await call(meter, "sqs", "SendMessageCommand", {});
    await call(meter, "sqs", "ReceiveMessageCommand", { Messages: [] });
    await call(meter, "sqs", "ReceiveMessageCommand", { Messages: [{}] });
    expect(meter.totals()).toMatchObject({ sqsRequests: 3, emptyReceives: 1 });
  });
});

describe("transactions through the middleware", () => {
  it("are measured item by item (2 units per item per started KB), not as the emulator reports them", async () => {
    // items of about 100 and 1,500 bytes
    const items: Record<string, Record<string, { S: string }>> = {
      "EVT#1": { pk: { S: "R" }, sk: { S: "EVT#1" }, x: { S: "e".repeat(90) } },
      RUN: { pk: { S: "R" }, sk: { S: "RUN" }, x: { S: "r".repeat(1500) } },
    };
    const meter = new Meter(undefined, async (key) => items[key.sk as string]);
    const input = {
      TransactItems: [
        { ConditionCheck: { TableName: "t", Key: { pk: "R", sk: "RUN" }, ConditionExpression: "x" } },
        { Put: { TableName: "t", Item: { pk: "R", sk: "EVT#1" } } },
      ],
    };
    const next = async () => ({ output: { ConsumedCapacity: [{ TableName: "t", CapacityUnits: 4 }] } });
    await meterMiddleware(meter, "dynamodb")(next, { commandName: "TransactWriteItemsCommand" })({ input });
    // the run (1,500 bytes): 2 × 2; the event: 2 × 1
    expect(meter.totals()).toMatchObject({ writeUnits: 6, dynamodbCalls: 1 });
  });

  it("a cancelled one is counted as failed, at 2 units per item", async () => {
    const meter = new Meter();
    const input = { TransactItems: [{ Put: {} }, { Put: {} }] };
    const next = async () => {
      throw new TransactionCanceledException({ message: "x", $metadata: {}, CancellationReasons: [] });
    };
    await expect(
      meterMiddleware(meter, "dynamodb")(next, { commandName: "TransactWriteItemsCommand" })({ input }),
    ).rejects.toThrow();
    expect(meter.totals()).toMatchObject({ writeUnits: 4, failedWrites: 1 });
  });
});

describe("attachMeter", () => {
  it("puts the middleware on the engine's clients and takes it off again", () => {
    const has = () =>
      [db(), sqs()].map((client) =>
        client.middlewareStack.identify().some((m) => m.includes("onceflowMeter")),
      );
    const detach = attachMeter(new Meter());
    expect(has()).toEqual([true, true]);
    detach();
    expect(has()).toEqual([false, false]);
  });
});

describe("index writes", () => {
  const sweep: IndexSpec = { name: "sweep", keys: ["sweepShard", "sweepAt"], projection: "KEYS_ONLY" };
  const list: IndexSpec = {
    name: "list",
    keys: ["listPk", "listSk"],
    projection: "INCLUDE",
    include: ["status"],
  };
  const item = (fields: Record<string, string>) =>
    Object.fromEntries(Object.entries({ pk: "R", sk: "T", ...fields }).map(([k, v]) => [k, { S: v }]));

  it("bill an entry put or deleted 1 unit, a moved entry 2, a changed projection 1, anything else 0", () => {
    expect(indexWriteUnits(sweep, undefined, item({ sweepShard: "1", sweepAt: "a" }))).toBe(1);
    expect(indexWriteUnits(sweep, item({ sweepShard: "1", sweepAt: "a" }), item({}))).toBe(1);
    expect(
      indexWriteUnits(
        sweep,
        item({ sweepShard: "1", sweepAt: "a" }),
        item({ sweepShard: "1", sweepAt: "b" }),
      ),
    ).toBe(2);
    expect(
      indexWriteUnits(
        sweep,
        item({ sweepShard: "1", sweepAt: "a", x: "1" }),
        item({ sweepShard: "1", sweepAt: "a", x: "2" }),
      ),
    ).toBe(0);
    expect(indexWriteUnits(sweep, item({ x: "1" }), item({ x: "2" }))).toBe(0);
    const run = { listPk: "RUNS#w", listSk: "t#r" };
    expect(
      indexWriteUnits(list, item({ ...run, status: "running" }), item({ ...run, status: "succeeded" })),
    ).toBe(1);
    expect(
      indexWriteUnits(
        list,
        item({ ...run, status: "running", x: "1" }),
        item({ ...run, status: "running", x: "2" }),
      ),
    ).toBe(0);
    // an entry over 1 KB (its projected attributes and 100 bytes of overhead) costs a unit per KB
    expect(indexWriteUnits(list, undefined, item({ ...run, status: "s".repeat(1000) }))).toBe(2);
  });

  it("are added to a single write's units, from the item read before and after it", async () => {
    let stored: Record<string, { S: string }> | undefined = item({ sweepShard: "1", sweepAt: "a" });
    const meter = new Meter(undefined, async () => stored, [sweep]);
    const next = async () => {
      stored = item({ sweepShard: "1", sweepAt: "b" });
      return { output: {} };
    };
    const input = { TableName: "t", Key: { pk: "R", sk: "T" }, UpdateExpression: "SET sweepAt = :b" };
    await meterMiddleware(meter, "dynamodb")(next, { commandName: "UpdateItemCommand" })({ input });
    // the item (1 unit) and its sweep entry moved (2)
    expect(meter.totals()).toMatchObject({ writeUnits: 3 });
  });
});
