/**
 * The store's own limit, measured in the same bench run as the figure it bounds: how many
 * conditional PutItems a second DynamoDB Local takes from many clients at once (distinct keys, each
 * `attribute_not_exists(pk)`, as the engine's writes are), on this machine, now. An item of a
 * fan-out needs at least three such writes (its creation, its claim, its result), so a third of that
 * rate is the most items a second any executor on this store could carry; `fanout` reports its own
 * rate against it (measured before and after its runs, the higher: a cold JVM understates it).
 */
import { randomUUID } from "node:crypto";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { round } from "./figures";
import type { BenchStack } from "./setup";

/** Writes an item of a fan-out takes at the least: creation, claim, result. */
export const WRITES_PER_ITEM = 3;

export interface StoreLimit {
  clients: number;
  seconds: number;
  conditionalPutsPerSecond: number;
  /** conditionalPutsPerSecond ÷ WRITES_PER_ITEM: items a second at most. */
  itemsPerSecond: number;
  /** Every measurement taken (the figure above is the highest). */
  measuredPutsPerSecond: number[];
}

/** The highest of several measurements, with all of them noted. */
export function higherOf(limits: StoreLimit[]): StoreLimit {
  const best = limits.reduce((a, b) => (b.conditionalPutsPerSecond > a.conditionalPutsPerSecond ? b : a));
  return { ...best, measuredPutsPerSecond: limits.map((l) => l.conditionalPutsPerSecond) };
}

export async function measureStoreLimit(bench: BenchStack, clients = 32, seconds = 5): Promise<StoreLimit> {
  const table = bench.stack.env.TABLE_NAME as string;
  const probe = randomUUID();
  const until = Date.now() + seconds * 1000;
  let puts = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let n = 0; Date.now() < until; n++) {
        await bench.stack.clients.dynamodb.send(
          new PutItemCommand({
            TableName: table,
            Item: {
              pk: { S: `PROBE#${probe}#${client}` },
              sk: { S: String(n).padStart(8, "0") },
              status: { S: "queued" },
            },
            ConditionExpression: "attribute_not_exists(pk)",
          }),
        );
        puts++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const rate = puts / elapsed;
  return {
    clients,
    seconds: round(elapsed, 2),
    conditionalPutsPerSecond: round(rate, 1),
    itemsPerSecond: round(rate / WRITES_PER_ITEM, 1),
    measuredPutsPerSecond: [round(rate, 1)],
  };
}
