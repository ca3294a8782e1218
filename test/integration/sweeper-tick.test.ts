/**
 * The sweeper's chain of ticks (lib/engine/tick.ts) against DynamoDB Local: of ticks racing for the
 * chain one goes on, a tick that comes back while the chain lives is dropped, and a dead chain is
 * taken over, by its own tick coming back or by the schedule.
 */

import { DeleteCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { db } from "../../lib/clients";
import { config } from "../../lib/config";
import { takeTick } from "../../lib/engine/tick";
import { keys } from "../../lib/store/keys";
import { useLocalStack } from "../helpers/stack";

// no schedule, so no chain of the stack's own: the test drives the tick item alone
useLocalStack({ sweeper: false, environment: { SWEEP_EVERY_SECONDS: "5" } });

const at = (base: number, seconds: number) => new Date(base + seconds * 1000);
const fresh = () => db().send(new DeleteCommand({ TableName: config.tableName(), Key: keys.sweeperTick }));

describe("the sweeper's chain of ticks", () => {
  it("of 16 ticks with the same due taken at the same instant, one goes on (20 rounds)", async () => {
    await fresh();
    const t0 = Date.now();
    let tick = await takeTick(undefined, at(t0, 0)); // the schedule starts the first chain
    expect(tick?.due).toBe(at(t0, 5).toISOString());
    for (let round = 1; round <= 20; round++) {
      const due = tick?.due;
      const taken = await Promise.all(Array.from({ length: 16 }, () => takeTick(due, at(t0, 5 * round))));
      const winners = taken.filter((t) => t !== undefined);
      expect(winners).toHaveLength(1);
      tick = winners[0];
    }
  });

  it("the schedule leaves a live chain alone, and takes over one whose tick is late", async () => {
    await fresh();
    const t0 = Date.now();
    const tick = await takeTick(undefined, at(t0, 0));
    expect(await takeTick(undefined, at(t0, 1))).toBeUndefined(); // due at t0+5: alive
    expect(await takeTick(undefined, at(t0, 7))).toBeUndefined(); // 2 s late: still alive
    const racing = await Promise.all(Array.from({ length: 8 }, () => takeTick(undefined, at(t0, 9))));
    expect(racing.filter((t) => t !== undefined)).toHaveLength(1); // 4 s late: dead, taken over once
    expect(await takeTick(tick?.due, at(t0, 9))).toBeUndefined(); // the old chain's tick, late: dropped
  });

  it("a tick that comes back after its sweeper sent the next one is dropped", async () => {
    await fresh();
    const t0 = Date.now();
    const first = await takeTick(undefined, at(t0, 0));
    const second = await takeTick(first?.due, at(t0, 5)); // sent the next tick, then died before its delete
    expect(second).toBeDefined();
    // back after the visibility timeout (10 s after it was received), while the chain lives on
    const third = await takeTick(second?.due, at(t0, 10));
    expect(third).toBeDefined();
    expect(await takeTick(first?.due, at(t0, 15))).toBeUndefined();
  });

  it("a tick whose sweeper died before sending the next one takes the chain over when it comes back", async () => {
    await fresh();
    const t0 = Date.now();
    const first = await takeTick(undefined, at(t0, 0));
    const taken = await takeTick(first?.due, at(t0, 5)); // took the chain, died before sending
    expect(taken).toBeDefined();
    // back 10 s after it was received (the queue's visibility timeout): the chain's tick is 10 s late
    const again = await takeTick(first?.due, at(t0, 15));
    expect(again?.due).toBe(at(t0, 20).toISOString());
  });
});
