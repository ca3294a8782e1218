import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { countable, isCounted, withCounted } from "../../../lib/engine/counted";
import type { FanOutRecord } from "../../../lib/engine/task-record";
import type { CompletionMessage } from "../../../lib/queue";

type Parent = Pick<FanOutRecord, "countedBelow" | "countedAbove" | "putBack" | "redo">;

const completion = (item: number, redriven?: number): CompletionMessage => ({
  runId: "r",
  task: "each",
  item,
  attempt: 1,
  outcome: "succeeded",
  ...(redriven ? { redriven } : {}),
});

/** Delivers completions one by one as countDown does: the countable ones are counted; returns how many. */
function deliver(parent: Parent, deliveries: CompletionMessage[]): { parent: Parent; counted: number } {
  let p = parent;
  let counted = 0;
  for (const c of deliveries) {
    if (!countable(p, c)) continue;
    p = { ...p, ...withCounted(p, [c.item as number]) };
    counted++;
  }
  return { parent: p, counted };
}

/** Indices 0..n-1, each delivered 1 to 3 times, in an order that finishes items out of order. */
const deliveries = fc.integer({ min: 1, max: 60 }).chain((n) =>
  fc
    .array(fc.integer({ min: 1, max: 3 }), { minLength: n, maxLength: n })
    .chain((copies) =>
      fc.shuffledSubarray(
        copies.flatMap((k, i) => Array(k).fill(i) as number[]),
        {
          minLength: copies.reduce((a, b) => a + b, 0),
        },
      ),
    )
    .map((order) => ({ n, order })),
);

describe("counted set on the parent", () => {
  it("counts every item exactly once, whatever the duplicates and the order, and folds into countedBelow", () => {
    fc.assert(
      fc.property(deliveries, ({ n, order }) => {
        const { parent, counted } = deliver(
          { countedBelow: 0, countedAbove: [] },
          order.map((i) => completion(i)),
        );
        expect(counted).toBe(n);
        for (let i = 0; i < n; i++) expect(isCounted(parent, i)).toBe(true);
        expect(parent).toMatchObject({ countedBelow: n, countedAbove: [] });
      }),
    );
  });

  it("keeps countedAbove to the items finished out of order", () => {
    const { parent } = deliver(
      {},
      [2, 3, 5, 0].map((i) => completion(i)),
    );
    expect(parent).toMatchObject({ countedBelow: 1, countedAbove: [2, 3, 5] });
    expect([0, 1, 2, 3, 4, 5].map((i) => isCounted(parent, i))).toEqual([
      true,
      false,
      true,
      true,
      false,
      true,
    ]);
  });

  it("after a redrive: a put-back item counts once more, only by a completion of that redrive", () => {
    fc.assert(
      fc.property(
        deliveries,
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.boolean(), { maxLength: 60 }),
        ({ n, order }, redrive, backs) => {
          const all = deliver(
            {},
            order.map((i) => completion(i)),
          ).parent;
          const back = Array.from({ length: n }, (_, i) => i).filter((i) => backs[i]);
          const putBack = Object.fromEntries(back.map((i) => [String(i), redrive]));
          // put back: still counted while in `redo`; late duplicates count nothing
          const waiting: Parent = { ...all, redo: back, putBack };
          expect(
            deliver(
              waiting,
              order.map((i) => completion(i)),
            ).counted,
          ).toBe(0);
          for (const i of back) expect(isCounted(waiting, i)).toBe(true);
          // queued again (out of `redo`): not counted, and only this redrive's completions count
          const requeued: Parent = { ...waiting, redo: [] };
          for (const i of back) expect(isCounted(requeued, i)).toBe(false);
          const late = order.map((i) => completion(i, redrive - 1));
          const fresh = [...back, ...back].map((i) => completion(i, redrive));
          const { parent, counted } = deliver(requeued, [...late, ...fresh]);
          expect(counted).toBe(back.length);
          for (let i = 0; i < n; i++) expect(isCounted(parent, i)).toBe(true);
          expect(parent).toMatchObject({ countedBelow: n, countedAbove: [], putBack: {} });
        },
      ),
    );
  });
});
