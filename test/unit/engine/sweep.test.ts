/**
 * The order of a sweep's pass (lib/engine/sweep.ts): the longest overdue first, across the
 * shards, so that a pass cut short by a sweeper that died leaves the most recently due, and no
 * shard's backlog keeps another shard's items waiting pass after pass.
 */
import "../../helpers/unit-env";
import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { db } from "../../../lib/clients";
import { sweep } from "../../../lib/engine/sweep";

const dynamo = mockClient(db());
beforeEach(() => dynamo.reset());

const at = (second: number) => new Date(Date.UTC(2026, 11, 1, 0, 0, second)).toISOString();

describe("a sweep's pass", () => {
  it("acts on the overdue items of all shards in the order they fell due", async () => {
    // shard 0 holds the most recently due, shard 3 the longest overdue: 3 items each
    dynamo.on(QueryCommand).callsFake(async (input) => {
      const shard = Number(input.ExpressionAttributeValues[":shard"]);
      return {
        Items: [0, 1, 2].map((k) => ({
          pk: `RUN#s${shard}k${k}`,
          sk: "RUN",
          sweepShard: String(shard),
          sweepAt: at(40 - shard * 10 + k),
        })),
      };
    });
    // each item is gone by the time it is read: nothing more to do for it
    dynamo.on(GetCommand).resolves({});
    const result = await sweep(new Date(at(59)));
    expect(result.overdue).toBe(12);
    const read = dynamo.commandCalls(GetCommand).map((c) => c.args[0].input.Key?.pk);
    expect(read).toEqual([3, 2, 1, 0].flatMap((shard) => [0, 1, 2].map((k) => `RUN#s${shard}k${k}`)));
  });
});
