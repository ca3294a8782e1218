/**
 * A concurrency limit's hand-over (lib/engine/slot.ts) with the interleaving that needs its guard
 * pinned by an interleaving point: a run whose execution is parked is cancelled between the
 * give-back's read of that execution and its write. The hand-over is conditional on the execution
 * still parked (`STILL_PARKED`), so the slot is not handed to the cancelled execution but comes
 * back. Taken away, the slot goes to an execution that will never give it back: the limit stays
 * full for good. (The simulation found this once in about 100 schedules; here it is every time.)
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { claim } from "../../lib/engine/claim";
import { readLimit, slotGuards } from "../../lib/engine/slot";
import type { TaskRecord } from "../../lib/engine/task-record";
import type { TaskMessage } from "../../lib/queue";
import { keys } from "../../lib/store/keys";
import { readItem } from "../../lib/store/run-state";
import { settleWithGiveBackHeld } from "../helpers/give-back";
import { register } from "../helpers/runs";
import { captureTaskMessages } from "../helpers/sends";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack({ sweeper: false });
const captured = captureTaskMessages();

/** Two runs of one limited task (maxRunning 1): the first holds the slot, the second is parked; the second is cancelled while the first's give-back is between its read and its write. */
async function cancelDuringHandOver(): Promise<{
  limit: Awaited<ReturnType<typeof readLimit>>;
  parked?: TaskRecord;
}> {
  captured.clear();
  const name = `hand-over-${randomUUID().slice(0, 8)}`;
  await register(stack, {
    name,
    limits: { actions: { "core.noop": { maxRunning: 1 } } },
    tasks: { only: { action: "core.noop" } },
  });
  const holder = await stack.client.createRun(name);
  const waiter = await stack.client.createRun(name);
  const [first, second] = captured.sent() as [TaskMessage, TaskMessage];
  const held = await claim(first, "w1");
  expect(held.kind).toBe("claimed");
  expect((await claim(second, "w2")).kind).toBe("parked");

  const cancelled = await settleWithGiveBackHeld(
    (held as { record: TaskRecord }).record,
    (detail) => detail.chosen !== undefined,
    async () => expect((await stack.api("POST", `/runs/${waiter.runId}/cancel`)).status).toBe(202),
  );
  expect(cancelled).toBe(true);
  expect(holder.runId).not.toBe(waiter.runId);
  return {
    limit: await readLimit({ workflow: name, action: "core.noop" }),
    parked: await readItem<TaskRecord>(keys.task(waiter.runId, "only")),
  };
}

describe("a limit's hand-over to a parked execution cancelled meanwhile", () => {
  it("hands it nothing: the slot comes back and nobody waits", async () => {
    for (let round = 0; round < 3; round++) {
      const { limit, parked } = await cancelDuringHandOver();
      expect(limit).toMatchObject({ active: 0, waiting: [] });
      expect(parked).toMatchObject({ status: "cancelled" });
      expect(parked?.slot).not.toBe("held");
    }
  });

  it("that guard taken away is caught: the slot goes to the cancelled execution and never comes back", async () => {
    slotGuards.stillParked = false;
    try {
      const { limit, parked } = await cancelDuringHandOver();
      expect(limit?.active).toBe(1);
      expect(parked).toMatchObject({ status: "cancelled", slot: "held" });
    } finally {
      slotGuards.stillParked = true;
    }
  });
});
