/**
 * A concurrency limit's give-back of a run's last slot while another execution of that run waits
 * (lib/engine/slot.ts): the run's `served#` count stays for that entry, so the give-back is
 * conditional on the entry still being in the list (`GIVE_BACK.ownStillWaits`). Here the entry,
 * stale (its run was cancelled), is dropped between the give-back's read and its write, as another
 * give-back that read the run still holding its slot drops it: the list's other clauses do not
 * see that (the entry handed the slot is still where it was read). Taken away, the run's count
 * stays on the limit for good, though nothing of the run holds or waits.
 */
import { randomUUID } from "node:crypto";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { db } from "../../lib/clients";
import { config } from "../../lib/config";
import { claim } from "../../lib/engine/claim";
import { readLimit, slotGuards } from "../../lib/engine/slot";
import type { TaskRecord } from "../../lib/engine/task-record";
import { keys } from "../../lib/store/keys";
import { settleWithGiveBackHeld } from "../helpers/give-back";
import { register } from "../helpers/runs";
import { captureTaskMessages } from "../helpers/sends";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack({ sweeper: false });
const captured = captureTaskMessages();

/**
 * maxRunning 1: run `r`'s a holds the slot; run `c`'s a parks, then `r`'s b behind it; `r` is
 * cancelled (its b with it, the entry left stale). `r`'s a ends: its give-back reads the list,
 * hands the slot to `c`'s a (served least) without reading `r`'s b, and so keeps `r`'s count;
 * before it writes, `r`'s b is dropped from the list. Returns the limit and the two runs.
 */
async function lastSlotWhileItsEntryIsDropped() {
  const name = `give-back-${randomUUID().slice(0, 8)}`;
  await register(stack, {
    name,
    limits: { actions: { "core.noop": { maxRunning: 1 } } },
    tasks: { a: { action: "core.noop" }, b: { action: "core.noop" } },
  });
  captured.clear();
  const { messageOf } = captured;
  const r = (await stack.client.createRun(name)).runId;
  const c = (await stack.client.createRun(name)).runId;
  const held = await claim(messageOf(r, "a"), "w1");
  expect(held.kind).toBe("claimed");
  expect((await claim(messageOf(c, "a"), "w2")).kind).toBe("parked");
  expect((await claim(messageOf(r, "b"), "w3")).kind).toBe("parked");
  expect((await stack.api("POST", `/runs/${r}/cancel`)).status).toBe(202);

  const limitKey = keys.limit(name, "core.noop");
  const dropped = await settleWithGiveBackHeld(
    (held as { record: TaskRecord }).record,
    (detail) => detail.runId === r,
    // what a concurrent give-back that found `r`'s b stale writes (`r` held its slot when it read)
    () =>
      db().send(
        new UpdateCommand({
          TableName: config.tableName(),
          Key: limitKey,
          UpdateExpression: "REMOVE waiting[1]",
          ConditionExpression: "waiting[1] = :entry",
          ExpressionAttributeValues: { ":entry": `${r}/b/-` },
        }),
      ),
  );
  expect(dropped).toBe(true);
  const limit = { ...(await readLimit({ workflow: name, action: "core.noop" })) } as Record<string, unknown>;
  return { limit, r, c };
}

describe("a give-back of a run's last slot while an entry of that run waits", () => {
  it("keeps the run's count only while the entry is still listed: dropped meanwhile, the count goes", async () => {
    for (let round = 0; round < 3; round++) {
      const { limit, r, c } = await lastSlotWhileItsEntryIsDropped();
      expect(limit).toMatchObject({ active: 1, waiting: [], [`held#${c}`]: 1, [`served#${c}`]: 1 });
      expect(Object.keys(limit).filter((k) => k.endsWith(r))).toEqual([]);
    }
  });

  it("that guard taken away is caught: the run's count stays on the limit for good", async () => {
    slotGuards.ownStillWaits = false;
    try {
      const { limit, r } = await lastSlotWhileItsEntryIsDropped();
      expect(limit).toMatchObject({ waiting: [], [`served#${r}`]: 1 });
      expect(limit[`held#${r}`]).toBeUndefined();
    } finally {
      slotGuards.ownStillWaits = true;
    }
  });
});
