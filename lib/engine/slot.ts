/**
 * Concurrency limits (F4, I4): `limits.actions.NAME.maxRunning` caps how many executions of an
 * action run at once across every run of the workflow, and `limits.maxRunning` how many of the
 * workflow's executions run at once (those of actions without a limit of their own: an execution
 * is subject to one limit, its action's or else the workflow's, `*`). One item per limit holds the
 * slot counter `active`, the executions `waiting` for a slot in the order they queued, and per run
 * the slots it holds (`held#{runId}`) and has been given so far (`served#{runId}`, for fairness). A slot is held from the claim until the
 * execution's terminal (or retry) transition, and every change to the counter is written in the
 * same transaction as the execution's own transition, so it happens exactly as often as that
 * transition: a duplicated or redelivered completion never gives a slot back twice.
 *
 * Timeline of one execution of a limited action:
 *   claim    limit: active += 1, held#, served# += 1  if active < max AND nobody waits  exec: queued -> running, slot = held
 *   claim    limit: waiting += [exec]            if active >= max OR somebody waits exec: slot = waiting (parked;
 *                                                                                     its message is deleted)
 *   settle   hand-over: limit REMOVE waiting[i]  if waiting[i] = next               next: slot = held, message sent
 *            (held# moves, served#next += 1)       (the slot never becomes free, so nobody overtakes `next`)
 *            or, nobody waiting: active -= 1     if active > 0 AND size(waiting) = n
 *   cancel   an execution that held a slot gives it back the same way; one that waited stays in the
 *            list, and the hand-over that reaches it drops it
 *
 * Fairness: a slot freed goes to the waiting execution whose run has been given the fewest slots so
 * far (the oldest among equals), so runs take turns and a run of many items cannot starve the runs
 * queued behind it. A run's two counts are removed with its last slot, once none of it waits.
 */
import { config } from "../config";
import type { WorkflowDefinition } from "../definition/types";
import { sendTasks, type TaskMessage } from "../queue";
import { lostRace, retryOnContention } from "../store/contention";
import { historyEvent, isHistoryEvent } from "../store/events";
import { keys } from "../store/keys";
import { readItem } from "../store/run-state";
import { keyOf, refusedAt, type TxItem, type TxOutcome, transact, type Write } from "../store/transaction";
import { point } from "./interleave";
import { nextLook, type TaskRecord } from "./task-record";

/** The guard of a claim taking a slot of a limit: one is free and nobody waits (F4, I4). */
export const SLOT_FREE =
  "(attribute_not_exists(active) OR active < :max) AND (attribute_not_exists(waiting) OR size(waiting) = :zero)";
/** The guard of parking for a slot: every slot is taken, or others wait (F4, I4). */
export const SLOT_TAKEN = "attribute_exists(active) AND (active >= :max OR size(waiting) > :zero)";
/** The guard of handing a slot over: the execution is still parked, at the attempt read (F4, I4). */
export const STILL_PARKED = "#status = :queued AND slot = :waiting AND attempt = :attempt";

/**
 * Guards of a give-back as switches, for their guard-removal tests only, which pin the
 * interleavings that need them (the simulation finds them rarely): the hand-over's (hand-over.test.ts:
 * a cancel between the give-back's read and its write), and a run's last slot kept counted while an
 * entry of it waits (give-back.test.ts: that entry dropped between the read and the write). Never
 * changed outside tests.
 */
export const slotGuards = { stillParked: true, ownStillWaits: true };

/** The limit an execution is subject to, carried on its record (a worker never reads the definition). */
export interface SlotLimit {
  workflow: string;
  /** The limited action, or `*` for the workflow-wide limit. */
  action: string;
  maxRunning: number;
}

/** The `action` of the workflow-wide limit. */
export const WHOLE_WORKFLOW = "*";

export interface LimitRecord {
  active: number;
  /** Executions waiting for a slot, oldest first, as `{runId}/{task}/{item or -}`. */
  waiting: string[];
  /** `held#{runId}`: slots each run holds; `served#{runId}`: slots it was given (both absent once it is done). */
  [perRun: `${"held" | "served"}#${string}`]: number;
}

/** The limit on `action` in `definition`, if any. */
export function limitOf(definition: WorkflowDefinition, action: string): SlotLimit | undefined {
  const own = definition.limits?.actions?.[action];
  if (own) return { workflow: definition.name, action, maxRunning: own.maxRunning };
  const whole = definition.limits?.maxRunning;
  return whole ? { workflow: definition.name, action: WHOLE_WORKFLOW, maxRunning: whole } : undefined;
}

export function readLimit(limit: Pick<SlotLimit, "workflow" | "action">): Promise<LimitRecord | undefined> {
  return readItem<LimitRecord>(keys.limit(limit.workflow, limit.action));
}

type Execution = Pick<TaskRecord, "runId" | "task" | "item">;

export const entryOf = (e: Execution) => `${e.runId}/${e.task}/${e.item ?? "-"}`;

function parseEntry(entry: string): Execution {
  const [runId = "", task = "", item = "-"] = entry.split("/");
  return { runId, task, item: item === "-" ? undefined : Number(item) };
}

const heldName = (runId: string) => `held#${runId}`;
const servedName = (runId: string) => `served#${runId}`;

const limitKey = (record: TaskRecord) => {
  const limit = record.limit as SlotLimit;
  return keys.limit(limit.workflow, limit.action);
};

/** The write that takes a free slot, for the claim's transaction. */
export function takeSlot(record: TaskRecord): TxItem {
  return {
    Update: {
      TableName: config.tableName(),
      Key: limitKey(record),
      UpdateExpression:
        "SET active = if_not_exists(active, :zero) + :one, waiting = if_not_exists(waiting, :none), " +
        "#held = if_not_exists(#held, :zero) + :one, #served = if_not_exists(#served, :zero) + :one",
      // closes: more than maxRunning claims taking slots at once (F4, I4), and a claim overtaking those waiting
      ConditionExpression: SLOT_FREE,
      ExpressionAttributeNames: { "#held": heldName(record.runId), "#served": servedName(record.runId) },
      ExpressionAttributeValues: {
        ":zero": 0,
        ":one": 1,
        ":none": [],
        ":max": (record.limit as SlotLimit).maxRunning,
      },
    },
  };
}

/** The writes that park an execution at the end of the waiting list (no slot was free). */
export function joinWaiting(record: TaskRecord): Write[] {
  return [
    {
      Update: {
        TableName: config.tableName(),
        Key: keys.execution(record),
        UpdateExpression: "SET slot = :waiting REMOVE sweepShard, sweepAt",
        // closes: two deliveries parking one execution twice, or parking it after another worker claimed it
        ConditionExpression: "#status = :queued AND attempt = :seen AND attribute_not_exists(slot)",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":waiting": "waiting", ":queued": "queued", ":seen": record.attempt },
      },
    },
    {
      Update: {
        TableName: config.tableName(),
        Key: limitKey(record),
        UpdateExpression: "SET waiting = list_append(waiting, :entry)",
        // closes: waiting for a slot that was given back meanwhile (nobody would hand it over)
        ConditionExpression: SLOT_TAKEN,
        ExpressionAttributeValues: {
          ":entry": [entryOf(record)],
          ":max": (record.limit as SlotLimit).maxRunning,
          ":zero": 0,
        },
      },
    },
    historyEvent(record.runId, "SlotWaiting", {
      task: record.task,
      item: record.item,
      detail: { action: record.limit?.action, maxRunning: record.limit?.maxRunning },
    }),
  ];
}

/** A waiting execution that got a slot: its task message is to be sent once the hand-over committed. */
export type Granted = Required<Pick<TaskMessage, "attempt">> & TaskMessage;

export interface GiveBack {
  /** For the transaction of the execution's own terminal (or retry, or cancel) transition. */
  writes: Write[];
  granted?: Granted;
}

/**
 * The clauses a give-back's condition is built from, per call (each on what was read): an entry of
 * the list still where it was, the run's count above one (or one: its last slot), a run of its own
 * still waiting when that was its last slot (its `served#` stays), a run whose entries it drops
 * holding nothing (its `served#` goes) or still holding a slot (its `served#` stays, for that
 * slot's give-back to remove), and nobody waiting (the counter goes down).
 *
 * The two about `served#` close the same race from both sides: the list can come back to what was
 * read (`[a]`, then `[a, b]`, then `[a]` once `b` is handed a slot), so the entries' clauses alone
 * cannot tell that a run's last slot was given back meanwhile, keeping its `served#` because of an
 * entry that this give-back drops (simulation seed 1838, duplicate).
 */
export const GIVE_BACK = {
  entryAsRead: (index: number) => `waiting[${index}] = :w${index}`,
  heldAbove: "#held > :one",
  heldLast: "#held = :one",
  ownStillWaits: "contains(waiting, :ownWaiting)",
  goneHoldingNothing: (k: number) => `attribute_not_exists(#goneHeld${k})`,
  goneStillHolding: (k: number) => `attribute_exists(#goneHeld${k})`,
  nobodyWaits: "active > :zero AND size(waiting) = :size",
};

/**
 * What giving back `record`'s slot takes: a hand-over to the fairest waiting execution, or, when
 * none waits, the counter going down. Waiting entries whose execution left (cancelled) are dropped
 * on the way. Every write is conditional on what was read, so if the list moved the caller's
 * transaction fails and it tries again.
 */
export async function giveBack(record: TaskRecord, now = new Date()): Promise<GiveBack> {
  const limit = await readLimit(record.limit as SlotLimit);
  if (!limit) throw new Error(`the limit of ${entryOf(record)} is missing although it holds a slot`);
  const count = (name: string) => limit[name as `held#${string}`] ?? 0;
  const candidates = limit.waiting.map((entry, index) => ({ entry, index, ...parseEntry(entry) }));
  const stale: typeof candidates = [];
  /** Its own entry, parked: a zombie's execution retried by the attempt that took over (never handed its own slot). */
  const skipped: typeof candidates = [];
  let chosen: (typeof candidates)[number] | undefined;
  let chosenAttempt = 0;
  while (!chosen) {
    const open = candidates.filter((c) => !stale.includes(c) && !skipped.includes(c));
    if (open.length === 0) break;
    const fewest = Math.min(...open.map((c) => count(servedName(c.runId))));
    const next = open.find((c) => count(servedName(c.runId)) === fewest) as (typeof candidates)[number];
    const execution = await readItem<TaskRecord>(keys.execution(next));
    const parked = execution?.status === "queued" && execution.slot === "waiting";
    // an entry of its own that went stale (parked, cancelled, then redriven) is dropped like any other
    if (!parked) stale.push(next);
    else if (next.entry === entryOf(record)) skipped.push(next);
    else {
      chosen = next;
      chosenAttempt = execution.attempt;
    }
  }

  await point("give-back:after-read", {
    runId: record.runId,
    task: record.task,
    item: record.item,
    chosen: chosen?.entry,
  });
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = { ":one": 1 };
  const sets: string[] = [];
  const removes: string[] = [];
  const conditions: string[] = [];
  for (const c of [...stale, ...(chosen ? [chosen] : [])]) {
    removes.push(`waiting[${c.index}]`);
    conditions.push(GIVE_BACK.entryAsRead(c.index));
    values[`:w${c.index}`] = c.entry;
  }
  if (chosen?.runId === record.runId) {
    // the slot stays with the run (a zombie's give-back may find the count gone: its write then fails on the
    // execution's condition, but `#served + :one` on nothing would have made the whole request invalid)
    sets.push("#served = if_not_exists(#served, :zero) + :one");
    names["#served"] = servedName(record.runId);
    values[":zero"] = 0;
  } else {
    // conditioned on which case it is, not on the count read: the run's other executions taking and
    // giving back slots meanwhile (a run of many items, all at once) must not make this one try again
    names["#held"] = heldName(record.runId);
    const leftover = candidates.find((c) => c.runId === record.runId && !stale.includes(c));
    if (count(heldName(record.runId)) > 1) {
      sets.push("#held = #held - :one");
      conditions.push(GIVE_BACK.heldAbove);
    } else {
      conditions.push(GIVE_BACK.heldLast);
      if (leftover) {
        // the run still waits: its served count stays, for the give-back that drops or serves that entry
        removes.push("#held");
        if (slotGuards.ownStillWaits) {
          conditions.push(GIVE_BACK.ownStillWaits);
          values[":ownWaiting"] = leftover.entry;
        }
      } else {
        // the run's last slot, and none of it waits: it leaves no trace on the limit
        names["#served"] = servedName(record.runId);
        removes.push("#held", "#served");
      }
    }
  }
  const gone = new Set(stale.map((c) => c.runId));
  for (const c of candidates) if (!stale.includes(c)) gone.delete(c.runId);
  gone.delete(record.runId);
  for (const [k, runId] of [...gone].entries()) {
    names[`#goneHeld${k}`] = heldName(runId);
    if (count(heldName(runId)) > 0) {
      // a run whose waiting executions all left, still holding a slot: its count stays for that slot's give-back
      conditions.push(GIVE_BACK.goneStillHolding(k));
      continue;
    }
    // a run whose waiting executions all left, holding no slot: its count goes with them
    names[`#goneServed${k}`] = servedName(runId);
    conditions.push(GIVE_BACK.goneHoldingNothing(k));
    removes.push(`#goneServed${k}`);
  }
  if (chosen && chosen.runId !== record.runId) {
    Object.assign(names, { "#toHeld": heldName(chosen.runId), "#toServed": servedName(chosen.runId) });
    sets.push(
      "#toHeld = if_not_exists(#toHeld, :zero) + :one",
      "#toServed = if_not_exists(#toServed, :zero) + :one",
    );
    values[":zero"] = 0;
  }
  if (!chosen) {
    sets.push("active = active - :one");
    conditions.push(GIVE_BACK.nobodyWaits);
    Object.assign(values, { ":zero": 0, ":size": limit.waiting.length });
  }
  const writes: Write[] = [
    {
      Update: {
        TableName: config.tableName(),
        Key: limitKey(record),
        UpdateExpression: [
          sets.length > 0 ? `SET ${sets.join(", ")}` : "",
          removes.length > 0 ? `REMOVE ${removes.join(", ")}` : "",
        ]
          .filter(Boolean)
          .join(" "),
        // closes: a slot given back twice or handed to two executions (the list or the counts moved since read)
        ConditionExpression: conditions.join(" AND "),
        ExpressionAttributeNames: Object.keys(names).length > 0 ? names : undefined,
        ExpressionAttributeValues: values,
      },
    },
  ];
  if (!chosen) return { writes };
  writes.push(
    {
      Update: {
        TableName: config.tableName(),
        Key: keys.execution(chosen),
        UpdateExpression: "SET slot = :held, sweepAt = :sweepAt",
        ...(slotGuards.stillParked
          ? {
              // closes: handing a slot to an execution cancelled (or handed one) since it was read
              ConditionExpression: STILL_PARKED,
              ExpressionAttributeNames: { "#status": "status" },
              ExpressionAttributeValues: {
                ":held": "held",
                ":waiting": "waiting",
                ":queued": "queued",
                ":attempt": chosenAttempt,
                ":sweepAt": nextLook(now),
              },
            }
          : { ExpressionAttributeValues: { ":held": "held", ":sweepAt": nextLook(now) } }),
      },
    },
    historyEvent(chosen.runId, "SlotAcquired", {
      task: chosen.task,
      item: chosen.item,
      detail: { action: record.limit?.action, from: entryOf(record) },
    }),
  );
  const { runId, task, item } = chosen;
  return { writes, granted: { runId, task, item, attempt: chosenAttempt } };
}

/** Sends the task message of an execution that was handed a slot (a new dedup generation: its first message was sent). */
export async function sendGranted(granted: Granted | undefined): Promise<void> {
  if (!granted) return;
  await sendTasks([granted], `slot/${granted.attempt}`);
}

/**
 * How many transactions a give-back tries when the limit keeps moving under it, three times the
 * default: every execution of the limited action takes and gives back slots on the one limit item,
 * the hottest item there is (with 20 tries and no backoff, a 1,000-item fan-out under a limit of
 * 100 had give-backs fail and stalled: commit 292bd88). About 24 s of backoff at most.
 */
const GIVE_BACK_TRIES = 30;

/**
 * Runs an execution's own transition (`writes`) and, if it holds a slot, the slot's give-back in
 * the same transaction, so the slot comes back exactly as often as the transition happens. When
 * only the give-back's writes failed (the limit's list moved since it was read) it reads the list
 * again and tries again; when one of `writes` failed, the transition did not happen: that outcome is
 * returned. Once committed, the execution handed the slot gets its task message.
 */
export async function transactGivingBack(
  record: TaskRecord,
  writes: Write[],
  now = new Date(),
): Promise<TxOutcome> {
  // the limit moving on every try throws (ContentionError), as it threw before: neither the
  // transition nor the give-back happened, and whoever asked tries again (a queue message comes
  // back; the API answers 503)
  return retryOnContention(
    `give back the slot of ${entryOf(record)} (the limit's list kept moving)`,
    async () => {
      const slot = record.slot === "held" ? await giveBack(record, now) : undefined;
      const outcome = await transact([...writes, ...(slot?.writes ?? [])]);
      if (outcome.ok) {
        await sendGranted(slot?.granted);
        return outcome;
      }
      // the transition's own items refused (not the limit's): the caller judges it
      const own = writes.filter((w): w is TxItem => !isHistoryEvent(w));
      if (!slot || own.some((w) => refusedAt(outcome, keyOf(w)))) return outcome;
      return lostRace(outcome.reasons);
    },
    // why three times the default: see GIVE_BACK_TRIES
    { tries: GIVE_BACK_TRIES },
  );
}
