import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ContentionError } from "../../../lib/errors";
import { useSleep } from "../../../lib/store/backoff";
import { CONTENTION_TRIES, lostRace, retryOnContention } from "../../../lib/store/contention";

/** The backoff's pauses, in ms, instead of sleeping them. */
let pauses: number[] = [];
let restoreSleep: () => void;
beforeEach(() => {
  pauses = [];
  restoreSleep = useSleep(async (ms) => {
    pauses.push(ms);
  });
});
afterEach(() => restoreSleep());

describe("retryOnContention", () => {
  it("returns the first answer that is not a lost race, without a pause before the first try", async () => {
    const tries: number[] = [];
    const answer = await retryOnContention("do a thing", async (n) => {
      tries.push(n);
      return n < 3 ? lostRace() : `won on try ${n}`;
    });
    expect(answer).toBe("won on try 3");
    expect(tries).toEqual([0, 1, 2, 3]);
    expect(pauses).toHaveLength(3);
  });

  it("waits the store's jittered, growing backoff between tries (20 ms doubling, capped at 1 s)", async () => {
    await expect(retryOnContention("do a thing", async () => lostRace(), { tries: 9 })).rejects.toThrow(
      ContentionError,
    );
    expect(pauses).toHaveLength(8);
    // backoff(n) waits in [0, min(1000, 20 × 2^n)): each pause under its own cap
    pauses.forEach((ms, n) => {
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThan(Math.min(1000, 20 * 2 ** n));
    });
  });

  it(`tries ${CONTENTION_TRIES} times by default, then throws ContentionError with the label and the last race's cause`, async () => {
    let calls = 0;
    const error = await retryOnContention("end run r1", async () => lostRace({ lost: ++calls })).catch(
      (e: unknown) => e,
    );
    expect(calls).toBe(CONTENTION_TRIES);
    expect(pauses).toHaveLength(CONTENTION_TRIES - 1);
    expect(error).toBeInstanceOf(ContentionError);
    const contention = error as ContentionError;
    expect(contention.code).toBe("Contention");
    expect(contention.label).toBe("end run r1");
    expect(contention.tries).toBe(CONTENTION_TRIES);
    expect(contention.message).toMatch(/^could not end run r1: lost the race 10 times/);
    expect(contention.cause).toEqual({ lost: CONTENTION_TRIES });
  });

  it("a success on the last try returns it", async () => {
    const answer = await retryOnContention("do a thing", async (n) => (n === 4 ? "late" : lostRace()), {
      tries: 5,
    });
    expect(answer).toBe("late");
  });

  it("with giveUp, answers it after the last lost race instead of throwing", async () => {
    let calls = 0;
    const answer = await retryOnContention(
      "fill r1/a",
      async () => {
        calls++;
        return lostRace();
      },
      { tries: 3, giveUp: () => "gave up" },
    );
    expect(answer).toBe("gave up");
    expect(calls).toBe(3);
  });

  it("lets any other error through at once, without trying again", async () => {
    let calls = 0;
    await expect(
      retryOnContention("do a thing", async () => {
        calls++;
        throw new Error("throttled");
      }),
    ).rejects.toThrow("throttled");
    expect(calls).toBe(1);
    expect(pauses).toEqual([]);
  });

  it("refuses a try limit below 1", async () => {
    await expect(retryOnContention("do a thing", async () => "x", { tries: 0 })).rejects.toThrow(/0 tries/);
  });
});
