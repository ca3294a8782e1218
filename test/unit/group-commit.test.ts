/** lib/group-commit.ts: entries that arrive while a batch is on its way go out together, each caller told of its own. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { groupCommit } from "../../lib/group-commit";

/** A `send` that records its batches and answers when the test says so. */
function recordingSend(refuse: (entry: number) => boolean = () => false) {
  const batches: number[][] = [];
  const pending: (() => void)[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const send = (entries: number[]) =>
    new Promise<(Error | undefined)[]>((resolve) => {
      batches.push(entries);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      pending.push(() => {
        inFlight--;
        resolve(entries.map((e) => (refuse(e) ? new Error(`refused ${e}`) : undefined)));
      });
    });
  return {
    send,
    batches,
    get maxInFlight() {
      return maxInFlight;
    },
    /** Answers the oldest batch on its way. */
    answer: async () => {
      pending.shift()?.();
      await new Promise((r) => setImmediate(r));
    },
  };
}

const settle = () => new Promise((r) => setImmediate(r));

describe("groupCommit", () => {
  it("sends what is handed over in one turn as one batch, and what comes while it is on its way as the next", async () => {
    const s = recordingSend();
    const add = groupCommit(s.send, 10);
    const first = [add(1), add(2), add(3)];
    await settle();
    expect(s.batches).toEqual([[1, 2, 3]]);
    const second = [add(4), add(5)];
    await settle();
    expect(s.batches).toHaveLength(1); // 4 and 5 wait for the first batch's answer
    await s.answer();
    await Promise.all(first);
    expect(s.batches).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
    await s.answer();
    await Promise.all(second);
  });

  it("never puts more than `max` entries in a batch", async () => {
    const s = recordingSend();
    const add = groupCommit(s.send, 10);
    const all = Array.from({ length: 25 }, (_, i) => add(i));
    await settle();
    for (let i = 0; i < 3; i++) await s.answer();
    await Promise.all(all);
    expect(s.batches.map((b) => b.length)).toEqual([10, 10, 5]);
  });

  it("rejects only the entries the batch refused, and a thrown send rejects its whole batch, not the next", async () => {
    const s = recordingSend((e) => e === 2);
    const add = groupCommit(s.send, 10);
    const results = Promise.allSettled([add(1), add(2), add(3)]);
    await settle();
    await s.answer();
    expect((await results).map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);

    let calls = 0;
    const flaky = groupCommit(async (entries: number[]) => {
      if (calls++ === 0) throw new Error("network");
      return entries.map(() => undefined);
    }, 10);
    const failed = Promise.allSettled([flaky(1), flaky(2)]);
    expect((await failed).map((r) => r.status)).toEqual(["rejected", "rejected"]);
    await expect(flaky(3)).resolves.toBeUndefined();
  });

  it("sends every entry once, in order, one batch at a time, whatever the arrivals", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ count: fc.integer({ min: 1, max: 15 }), answers: fc.nat(3) }), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.integer({ min: 1, max: 10 }),
        async (waves, max) => {
          const s = recordingSend();
          const add = groupCommit(s.send, max);
          const all: Promise<void>[] = [];
          let next = 0;
          for (const wave of waves) {
            for (let i = 0; i < wave.count; i++) all.push(add(next++));
            await settle();
            for (let i = 0; i < wave.answers; i++) await s.answer();
          }
          let done = false;
          void Promise.all(all).then(() => {
            done = true;
          });
          while (!done) await s.answer();
          expect(s.batches.flat()).toEqual(Array.from({ length: next }, (_, i) => i));
          expect(Math.max(...s.batches.map((b) => b.length))).toBeLessThanOrEqual(max);
          expect(s.maxInFlight).toBe(1);
        },
      ),
      { numRuns: 200 },
    );
  });
});
