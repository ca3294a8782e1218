/**
 * A concurrency limit's give-back held between its read of the limit and its write
 * (`give-back:after-read`, lib/engine/slot.ts), to force the exact race a test pins.
 */
import { expect } from "vitest";
import { onPoint } from "../../lib/engine/interleave";
import { settle } from "../../lib/engine/settle";
import type { TaskRecord } from "../../lib/engine/task-record";

/**
 * Settles `record`, a claimed attempt, as succeeded (and never `lost`); at the first read of the
 * limit that `at` accepts, its give-back waits for `meanwhile` before it writes. Returns whether
 * `meanwhile` ran.
 */
export async function settleWithGiveBackHeld(
  record: TaskRecord,
  at: (detail: Record<string, unknown>) => boolean,
  meanwhile: () => Promise<unknown>,
): Promise<boolean> {
  let ran = false;
  const release = onPoint("give-back:after-read", async (detail) => {
    if (ran || !at(detail)) return;
    ran = true;
    await meanwhile();
  });
  try {
    expect((await settle(record, { ok: true, output: null })).kind).not.toBe("lost");
  } finally {
    release();
  }
  return ran;
}
