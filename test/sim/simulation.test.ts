/**
 * The deterministic simulation (test/helpers/sim/simulation.ts): 780 seeded schedules of the
 * real engine over an in-memory table and queues, each fault alone and all together, checking
 * I1–I4 and I6–I8 on every schedule. Then the same schedules with one guard of the engine taken
 * away at a time (its condition treated as always true): each must be caught, which shows the
 * checks can fail and that every guard is needed.
 */
import { describe, expect, it } from "vitest";
import { CLAIM_AS_READ, claimGuards, LIMITED_CLAIM, QUEUED_CLAIM } from "../../lib/engine/claim";
import { countingGuards } from "../../lib/engine/counted";
import { FIRST_CLAIM, NONE_QUEUED_YET, WHILE_ENDED, WHILE_RUNNING } from "../../lib/engine/dispatch";
import { FROM_PENDING, VERSION_FENCE } from "../../lib/engine/fill";
import { LOCK_FREE } from "../../lib/engine/lock";
import { REDRIVABLE } from "../../lib/engine/redrive";
import { ATTEMPT_FENCE } from "../../lib/engine/settle";
import { GIVE_BACK, SLOT_FREE, SLOT_TAKEN, STILL_PARKED } from "../../lib/engine/slot";
import { START_FROM } from "../../lib/engine/start";
import { IF_ABSENT } from "../../lib/store/conditional";
import type { Weakening } from "../helpers/sim/memory-table";
import { type FaultMode, simulateMany } from "../helpers/sim/simulation";

// half the schedules now also race several runs for a concurrency limit's slots, and half redrive
// failed runs (up to four times each), which makes them longer: fewer of them keep this file's
// time about what it was
const SCHEDULES: Record<FaultMode, number> = {
  none: 80,
  duplicate: 140,
  redeliver: 140,
  crash: 140,
  stall: 140,
  all: 140,
};

describe("deterministic simulation: every invariant holds", () => {
  for (const [mode, count] of Object.entries(SCHEDULES) as [FaultMode, number][]) {
    it(`${count} schedules with ${mode === "none" ? "no faults" : mode === "all" ? "all faults" : `${mode} faults`}`, async () => {
      const summary = await simulateMany(mode, count, 1);
      expect(summary.violations).toEqual([]);
      const injected = Object.values(summary.injected).reduce((a, b) => a + b, 0);
      if (mode === "none") expect(injected).toBe(0);
      else expect(injected).toBeGreaterThan(count); // faults happen in (nearly) every schedule
    }, 120_000);
  }
});

/** The condition of a dispatch's queueing on the run (dispatch.ts): running, and not queued yet. */
const literally = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const QUEUEING = new RegExp(
  `^${literally(WHILE_RUNNING)} AND (attribute_not_exists\\(#queued\\.|${literally(NONE_QUEUED_YET)}$)`,
);

/** The engine's guards, by their exact condition expressions, and a fault mode that needs them. */
const GUARDS: {
  guard: string;
  condition: Weakening | Weakening[];
  mode: FaultMode;
  caught: RegExp;
  schedules?: number;
  /** The first seed (1 unless a later one is the one known to need the guard). */
  seed?: number;
}[] = [
  {
    guard: "claim: one worker per attempt (F3, I2)",
    // the claim without a read, the claims judged from the execution as read, and a limited action's
    // claim (also fenced on its slot as read): every variant goes
    condition: [
      QUEUED_CLAIM,
      CLAIM_AS_READ.queued,
      CLAIM_AS_READ.expired,
      ...[false, true].flatMap((expired) => [false, true].map((slot) => LIMITED_CLAIM(expired, slot))),
    ],
    mode: "duplicate",
    caught: /I2|I3/,
  },
  {
    guard: "claim: an item's record put only by its first claim (F3, I2)",
    // an item queued without its record (items.ts): copies of its message each put it running as attempt 1
    condition: FIRST_CLAIM,
    mode: "duplicate",
    // a copy of the message puts the record back over the one that moved on (I7), runs the first attempt again (I2, I3)
    caught: /I2|I3|I7/,
    schedules: 10, // caught at seed 1
  },
  {
    guard: "dispatch: a successor queued on its run only while the run is running (I3)",
    // the run's status and deadline taken out of the queueing's condition, its `not queued yet` kept
    condition: { condition: QUEUEING, as: (c) => c.slice(`${WHILE_RUNNING} AND `.length) },
    mode: "none",
    caught: /I3/,
  },
  {
    guard: "dispatch: a successor queued on its run once (I3)",
    // the queueing's `not queued yet` taken out, the run's status and deadline kept
    condition: { condition: QUEUEING, as: WHILE_RUNNING },
    mode: "duplicate",
    caught: /I3/,
  },
  {
    guard: "settle: fenced on the attempt (I8)",
    condition: ATTEMPT_FENCE,
    mode: "stall",
    caught: /I2|I3|I8/,
  },
  {
    guard: "countdown and fill: counters moved from the version read (I4)",
    condition: VERSION_FENCE,
    mode: "all",
    caught: /I4|I6/, // a lost update leaves a slot taken: the task never ends, or ends with active > 0
  },
  {
    guard: "dispatch, start, create: put only if absent (I1, I3)",
    condition: IF_ABSENT,
    mode: "duplicate",
    caught: /I1|I3/,
    schedules: 10, // caught at once; its schedules then loop until the step limit
  },
  {
    guard: "trigger and queueing of items: only from pending (F2, I1, I4)",
    // the start of a run (trigger, or the lock handed over) and the queueing of with-items items
    condition: [START_FROM, FROM_PENDING],
    mode: "all",
    caught: /I1|I3|I4/,
  },
  {
    guard: "concurrency key: one holder at a time (F5, I5)",
    condition: LOCK_FREE,
    mode: "none",
    caught: /I5/,
  },
  {
    guard: "limit: a claim takes a slot only if one is free and nobody waits (F4, I4)",
    condition: SLOT_FREE,
    mode: "none",
    caught: /I4/,
  },
  {
    guard: "limit: a give-back as read, the list and counts unmoved (F4, I4)",
    // built per call from GIVE_BACK's clauses: an entry as read for each it drops or hands over, the
    // run's count (above one, or its last), and nobody waiting when the counter goes down
    condition: (c: string) =>
      [GIVE_BACK.heldAbove, GIVE_BACK.heldLast, GIVE_BACK.nobodyWaits].some((clause) => c.includes(clause)) ||
      Array.from({ length: 100 }, (_, i) => GIVE_BACK.entryAsRead(i)).some((clause) => c.startsWith(clause)),
    mode: "duplicate",
    caught: /I4|I6/,
    // caught in 5 of seeds 1-10 at once; with it taken away some schedules never end (seed 11 of
    // duplicate runs on past the step limit, not bounded by it): so only these 10
    schedules: 10,
  },
  {
    guard:
      "limit: a give-back that drops a run's entries keeps its count only while it still holds a slot (F4, I4)",
    // the clause alone taken away: its count stays although the run's last slot went back between
    // the read and the write (the list back to what was read). Seed 1838 of duplicate found it;
    // GIVE_BACK.ownStillWaits, the same race from the other side, is pinned in give-back.test.ts
    condition: {
      condition: /attribute_exists\(#goneHeld\d+\)/,
      as: (c) => c.replace(/ AND attribute_exists\(#goneHeld\d+\)/g, ""),
    },
    mode: "duplicate",
    caught: /I4/,
    seed: 1838,
    schedules: 1,
  },
  {
    guard: "limit: park only behind a slot that is taken (F4, I4)",
    condition: SLOT_TAKEN,
    mode: "all",
    caught: /I4|I6/,
  },
  {
    guard: "limit: a slot handed only to an execution still parked (F4, I4)",
    condition: STILL_PARKED,
    // needs a cancel between the give-back's read of the parked execution and its write: rare here
    // (about one schedule in 100 with no faults), and which seeds catch it moves whenever the
    // engine's calls or timings change (85, 161, 167, 181 of the first 200 since leases and looks
    // became 20 s), hence 90 schedules. test/integration/hand-over.test.ts pins that interleaving with an interleaving
    // point and catches it every time, whatever the seeds do
    mode: "none",
    caught: /I4|I6/,
    schedules: 90,
  },
  {
    guard: "redrive: only a failed run, of concurrent redrives one (I1, I3)",
    condition: REDRIVABLE,
    // needs two redrives that read the run before either commits and put back nothing the other
    // one's writes fence (a run timed out with nothing failed): 13 violations in stall seeds 1-60,
    // 6 in crash, none in the other modes
    mode: "stall",
    caught: /I1|I6/,
  },
  {
    guard: "cleanup of an ended run: never once it is redriven (whileEnded)",
    condition: WHILE_ENDED,
    // a late wind-down cancels what the redrive put back: caught in duplicate (7 of seeds 1-60),
    // redeliver, crash, stall and all
    mode: "duplicate",
    caught: /I4|I5|I6/,
  },
  // endRun's fence on the redrive count it read (`redriveCount = :redrives`, or
  // `attribute_not_exists(redriveCount)`) taken away alone is caught in no mode in seeds 1-60: it
  // needs a handler that read the run before it failed to end it after a redrive, and the run's
  // other guards leave no such handler in these schedules. Its guard-removal test pins that
  // interleaving with interleaving points instead (test/integration/redrive.test.ts, endRunGuards).
];

/**
 * Seeds that once found a bug, kept as regressions (their schedules change when the engine's calls
 * do). Each is also pinned as the interleaving that found it, step by step, in
 * test/integration/regressions.test.ts, which keeps testing them whatever the seeds do.
 */
const FOUND: { seed: number; mode: FaultMode; bug: string }[] = [
  {
    seed: 624,
    mode: "all",
    bug: "a countdown that found the run past its deadline recorded its with-items task as cancelled, and the run then succeeded without the task's items",
  },
  {
    seed: 2,
    mode: "crash",
    bug: "a second redrive took the counts of items already put back (redo) back again: failedItems -2",
  },
  {
    seed: 67,
    mode: "stall",
    bug: "a redrive read a with-items task still running in a timed-out run, the wind-down cancelled it, and the redriven run succeeded without it",
  },
  {
    seed: 64,
    mode: "crash",
    bug: "a give-back skipped its own stale entry (parked, cancelled, then redriven): a slot free with an entry waiting, forever",
  },
  { seed: 105, mode: "crash", bug: "items of a redriven task parked behind their own stale entry never ran" },
  {
    seed: 1312,
    mode: "crash",
    bug: "a redrive read no record of a task queued on the run, whose first claim then put it cancelled: the redriven run ended without it",
  },
  {
    seed: 30,
    mode: "crash",
    bug: "a wind-down took a cancelled run out of the sweeper's index while an execution that parked after its cancel lost its race was still queued: the slot later handed to it never came back",
  },
  {
    seed: 417,
    mode: "all",
    bug: "a wind-down took a cancelled run out of the index while a successor's message was held by the worker that dispatched it; its claim then put it running, the worker froze before reading the run, and nothing looked at it again",
  },
  {
    seed: 1838,
    mode: "duplicate",
    bug: "a give-back dropped a cancelled run's stale entry, keeping the run's served count because the run held a slot when read; that slot had gone back meanwhile (the list back as read), and the count stayed for good",
  },
];

describe("deterministic simulation: seeds that found bugs", () => {
  for (const { seed, mode, bug } of FOUND) {
    it(`seed ${seed} (${mode}): ${bug}`, async () => {
      expect((await simulateMany(mode, 1, seed)).violations).toEqual([]);
    });
  }
});

describe("deterministic simulation: a seed is one schedule", () => {
  it("the same seed gives the same schedule, faults and findings", async () => {
    const first = await simulateMany("all", 5, 42);
    const again = await simulateMany("all", 5, 42);
    expect({ ...again, ms: 0 }).toEqual({ ...first, ms: 0 });
    expect(first.steps).toBeGreaterThan(0);
  });
});

/**
 * Guards that are not a condition expression: the read of the run after a claim (claim.ts), and
 * the countdown's test of the parent's counted set (counted.ts), fenced by the parent's `version`
 * (whose removal is a guard above). Each is switched off through `claimGuards` or
 * `countingGuards`, which only these tests touch.
 */
const CODE_GUARDS: {
  guard: string;
  off: keyof typeof countingGuards | keyof typeof claimGuards;
  mode: FaultMode;
  caught: RegExp;
  schedules?: number;
}[] = [
  {
    guard: "claim: the run read after the claim; an attempt claimed once it ended is cancelled unrun (I3)",
    off: "runRead",
    mode: "none",
    caught: /I3|I5|I6/,
  },
  {
    guard: "countdown: each item counted once (F1, I4)",
    off: "duplicates",
    mode: "duplicate",
    caught: /I4|I3/,
    schedules: 10, // caught at once; its schedules then loop until the step limit
  },
  {
    guard: "countdown: a completion from before a redrive counts nothing (F1, I4)",
    // a late completion of the item's earlier incarnation counts the new one (as it ended before);
    // seeds 88, 124, 125, 163 and 193 of the first 200 catch it since refills went ten at a time
    // (some seed under 60 did before), hence 90 schedules. test/integration/redrive.test.ts pins
    // that interleaving (the stale completion handed to advance while the new incarnation runs)
    // and catches it every time
    off: "incarnation",
    mode: "all",
    caught: /I4|I6|I7/,
    schedules: 90,
  },
];

describe("deterministic simulation: each guard taken away is caught", () => {
  for (const { guard, off, mode, caught, schedules = 60 } of CODE_GUARDS) {
    it(guard, async () => {
      const guards: Record<string, boolean> = off === "runRead" ? claimGuards : countingGuards;
      guards[off] = false;
      try {
        const summary = await simulateMany(mode, schedules, 1);
        expect(summary.violations.length).toBeGreaterThan(0);
        expect(summary.violations.some((v) => caught.test(v))).toBe(true);
      } finally {
        guards[off] = true;
      }
    }, 120_000);
  }

  for (const { guard, condition, mode, caught, schedules = 60, seed = 1 } of GUARDS) {
    it(guard, async () => {
      const summary = await simulateMany(mode, schedules, seed, [condition].flat());
      expect(summary.violations.length).toBeGreaterThan(0);
      expect(summary.violations.some((v) => caught.test(v))).toBe(true);
    }, 120_000);
  }
});
