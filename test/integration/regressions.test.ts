/**
 * Bugs the simulation found (test/sim/simulation.test.ts, FOUND), each pinned as the interleaving
 * that found it, driven step by step against DynamoDB Local: a seed replays its schedule only
 * while the engine makes the same calls, so a seed alone silently stops testing its bug when the
 * engine changes. Task messages are captured, not delivered (and completions and looks dropped),
 * and the stack runs no sweeper: the test is every worker, every advance and the clock.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { advance } from "../../lib/engine/advance";
import { claim } from "../../lib/engine/claim";
import { countDown } from "../../lib/engine/countdown";
import { onPoint } from "../../lib/engine/interleave";
import { redriveGuards } from "../../lib/engine/redrive";
import { settle } from "../../lib/engine/settle";
import { readLimit } from "../../lib/engine/slot";
import type { FanOutRecord, TaskRecord } from "../../lib/engine/task-record";
import { work } from "../../lib/engine/work";
import { type CompletionMessage, completionOf, type TaskMessage } from "../../lib/queue";
import { keys } from "../../lib/store/keys";
import { readItem } from "../../lib/store/run-state";
import { settleWithGiveBackHeld } from "../helpers/give-back";
import { eventsOf, register } from "../helpers/runs";
import { captureTaskMessages } from "../helpers/sends";
import { useSink } from "../helpers/sink";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack({ sweeper: false });
const captured = captureTaskMessages();
const sinkFixture = useSink();
const sink = () => sinkFixture.sink;

const later = (seconds: number) => new Date(Date.now() + seconds * 1000);

/** A run of one with-items task over items 0 and 1 calling the sink, its first fill done. */
async function fanOutRun(concurrency: number): Promise<{ name: string; runId: string }> {
  const name = `found-${randomUUID().slice(0, 8)}`;
  await register(stack, {
    name,
    timeoutSeconds: 600,
    tasks: {
      fan: {
        action: "core.http",
        withItems: "{% [0..1] %}",
        concurrency,
        input: { url: `${sink().url}/${name}/{% item %}`, body: { item: "{% item %}" } },
        retry: { maxAttempts: 1 },
      },
    },
  });
  captured.clear();
  const { runId } = await stack.client.createRun(name);
  await advance(runId); // the look the create sent `advance` (dropped here): starts the fan-out
  return { name, runId };
}

/** Works every task message captured so far (once each); returns the completions of the items. */
async function workAll(runId: string): Promise<CompletionMessage[]> {
  const messages = captured.sent().splice(0) as TaskMessage[];
  const done: CompletionMessage[] = [];
  for (const m of messages) {
    await work(m, "w");
    const item = await readItem<TaskRecord>(keys.item(runId, m.task, m.item as number));
    if (item) done.push(completionOf(item, item.status as CompletionMessage["outcome"]));
  }
  return done;
}

const parentOf = (runId: string) => readItem<FanOutRecord>(keys.task(runId, "fan"));

describe("bugs the simulation found, pinned", () => {
  it("seed 624 (all): a countdown that finds the run past its deadline leaves its task running, and the run goes on with every item", async () => {
    const { runId } = await fanOutRun(1);
    const [first] = await workAll(runId);
    // the countdown's clock is past the deadline; the run's own advance, later, is not
    expect(await countDown(runId, "fan", [first as CompletionMessage], later(601))).not.toBe("counted");
    expect(await parentOf(runId)).toMatchObject({ status: "running", succeededItems: 1, active: 0 });
    await advance(runId); // refills the slot the countdown could not
    const [second] = await workAll(runId);
    await advance(runId, [second as CompletionMessage]);
    const run = await stack.client.getRun(runId);
    expect(run).toMatchObject({ status: "succeeded", tasks: { fan: { items: { total: 2, succeeded: 2 } } } });
  });

  it("seed 67 (stall): a redrive during a timed-out run's wind-down waits (409) for its with-items task to be cancelled, then puts it back", async () => {
    const { runId } = await fanOutRun(1);
    const [first] = await workAll(runId);
    let during: number | undefined;
    const remove = onPoint("end-run:after-write", async (detail) => {
      if (detail.runId !== runId || !detail.ended) return;
      remove();
      // the run has failed (timed out); its wind-down has not cancelled the running task yet
      during = (await stack.api("POST", `/runs/${runId}/redrive`)).status;
    });
    try {
      await advance(runId, [first as CompletionMessage], later(601)); // counts, times the run out, winds down
    } finally {
      remove();
    }
    expect(during).toBe(409);
    expect(await parentOf(runId)).toMatchObject({ status: "cancelled" });
    expect((await stack.api("POST", `/runs/${runId}/redrive`)).status).toBe(202);
    await advance(runId); // the redrive's look (dropped here): fills the item it put back
    const [second] = await workAll(runId);
    await advance(runId, [second as CompletionMessage]);
    expect(await stack.client.getRun(runId)).toMatchObject({
      status: "succeeded",
      tasks: { fan: { items: { total: 2, succeeded: 2 } } },
    });
    expect(sink().requestsTo(`/${(await stack.client.getRun(runId)).workflow}/1`)).toHaveLength(1);
  });

  it("seed 2 (crash): a second redrive before any fill does not take the counts of items already put back again", async () => {
    const { name, runId } = await fanOutRun(2);
    sink().respond(`/${name}/0`, [400, 200]); // item 0 fails once (not retried), then succeeds
    await advance(runId, await workAll(runId));
    expect(await parentOf(runId)).toMatchObject({ status: "failed", failedItems: 1, succeededItems: 1 });
    // the first redrive commits; before its advance fills item 0 again, the run times out
    const remove = onPoint("redrive:after-commit", async (detail) => {
      if (detail.runId !== runId) return;
      remove();
      await advance(runId, [], later(601));
    });
    try {
      expect((await stack.api("POST", `/runs/${runId}/redrive`)).status).toBe(202);
    } finally {
      remove();
    }
    expect(await parentOf(runId)).toMatchObject({ status: "cancelled", failedItems: 0, redo: [0] });
    expect((await stack.client.getRun(runId)).status).toBe("failed");
    // the second redrive: item 0 is put back still, its failure not taken back a second time
    expect((await stack.api("POST", `/runs/${runId}/redrive`)).status).toBe(202);
    expect(await parentOf(runId)).toMatchObject({ failedItems: 0, succeededItems: 1, active: 1 });
    await advance(runId, await workAll(runId));
    expect(await stack.client.getRun(runId)).toMatchObject({
      status: "succeeded",
      tasks: { fan: { items: { total: 2, succeeded: 2, failed: 0 } } },
    });
  });

  it("seeds 64 and 105 (crash): a give-back drops its own stale entry (parked, cancelled, redriven), so the limit ends free with nobody waiting", async () => {
    const name = `found-${randomUUID().slice(0, 8)}`;
    await register(stack, {
      name,
      timeoutSeconds: 600,
      limits: { actions: { "core.noop": { maxRunning: 1 } } },
      tasks: { limited: { action: "core.noop" } },
    });
    const { messageOf } = captured;
    captured.clear();
    const holder = await stack.client.createRun(name);
    const held = await claim(messageOf(holder.runId), "w1");
    expect(held.kind).toBe("claimed");
    const { runId } = await stack.client.createRun(name);
    // its execution parks behind the holder; the run times out, and its wind-down cancels the
    // parked execution (whose entry stays in the limit's list, stale)
    expect((await claim(messageOf(runId), "w2")).kind).toBe("parked");
    await advance(runId, [], later(601));
    expect(await stack.client.getRun(runId)).toMatchObject({
      status: "failed",
      tasks: { limited: { status: "cancelled" } },
    });
    captured.clear();
    expect((await stack.api("POST", `/runs/${runId}/redrive`)).status).toBe(202);
    // put back, it parks again, behind its own stale entry
    expect((await claim(messageOf(runId), "w2")).kind).toBe("parked");
    captured.clear();
    // the holder ends: its slot goes to the parked execution, which runs and gives it back
    await settle((held as { record: TaskRecord }).record, { ok: true, output: null });
    await work(messageOf(runId), "w2");
    expect((await stack.client.getRun(runId)).status).toBe("succeeded");
    expect(await readLimit({ workflow: name, action: "core.noop" })).toMatchObject({
      active: 0,
      waiting: [],
    });
  });

  /**
   * Seed 1312 (crash): a successor queued on its run without its record when the run timed out; a
   * redrive reads the run's tasks (none for it), then its first claim puts it and, the run not
   * running, cancels it; then the redrive commits (the timeout's wind-down died: it would have closed the task, cancel.ts). Its check that the task still has no record
   * (`STILL_UNWRITTEN`) refuses, and the redrive, reading again, puts the cancelled task back.
   * Taken away, the redriven run carries a cancelled task and ends without what follows it.
   */
  async function claimDuringRedrive(): Promise<{ status: string; ran: string[] }> {
    const name = `found-${randomUUID().slice(0, 8)}`;
    await register(stack, {
      name,
      timeoutSeconds: 600,
      tasks: {
        a: { action: "core.noop", next: [{ do: ["b"] }] },
        b: { action: "core.noop", next: [{ do: ["c"] }] },
        c: { action: "core.noop" },
      },
    });
    captured.clear();
    const { runId } = await stack.client.createRun(name);
    await workAll(runId); // a, whose worker queues b on the run
    const [b] = captured.sent() as [TaskMessage];
    captured.clear();
    // the run times out, b never claimed, and the advance dies before its wind-down (which would
    // close b: cancel.ts cancelUnwritten), so b is still unwritten when the redrive reads
    const died = onPoint("end-run:after-write", () => {
      throw new Error("died before its wind-down");
    });
    await advance(runId, [], later(601)).catch(() => undefined);
    died();
    const remove = onPoint("redrive:before-commit", async (detail) => {
      if (detail.runId !== runId) return;
      remove();
      await work(b, "late"); // b's first claim: put, found the run failed, cancelled unrun
    });
    try {
      expect((await stack.api("POST", `/runs/${runId}/redrive`)).status).toBe(202);
    } finally {
      remove();
    }
    for (let round = 0; round < 3 && captured.sent().length > 0; round++) await workAll(runId);
    const run = await stack.client.getRun(runId);
    const ran = (await eventsOf(stack, runId))
      .filter((e) => e.type === "TaskSucceeded")
      .map((e) => e.task as string);
    return { status: run.status, ran };
  }

  it("seed 1312 (crash): a redrive racing the first claim of a task queued on the run puts that task back", async () => {
    expect(await claimDuringRedrive()).toEqual({ status: "succeeded", ran: ["a", "b", "c"] });
  });

  it("that guard taken away is caught: the redriven run carries the cancelled task and never runs what follows it", async () => {
    redriveGuards.stillUnwritten = false;
    try {
      const { status, ran } = await claimDuringRedrive();
      expect({ status, ran }).not.toEqual({ status: "succeeded", ran: ["a", "b", "c"] });
      expect(ran).not.toContain("c");
    } finally {
      redriveGuards.stillUnwritten = true;
    }
  });

  it("seed 30 (crash): a cancelled run keeps its look while an execution that parked after its cancel lost its race is queued; that look cancels it", async () => {
    const name = `found-${randomUUID().slice(0, 8)}`;
    await register(stack, {
      name,
      limits: { actions: { "core.noop": { maxRunning: 1 } } },
      tasks: { limited: { action: "core.noop" } },
    });
    captured.clear();
    const holder = await stack.client.createRun(name);
    const { messageOf } = captured;
    expect((await claim(messageOf(holder.runId), "w1")).kind).toBe("claimed");
    const { runId } = await stack.client.createRun(name);
    // its claim finds the slot taken; before it parks, the run is cancelled, and the cancel reads
    // the execution (queued, no slot) before it parks and writes after (and so is refused)
    let cancelRead: () => void = () => {};
    const cancelHasRead = new Promise<void>((read) => {
      cancelRead = read;
    });
    let releaseCancel: () => void = () => {};
    let cancelled: Promise<unknown> = Promise.resolve();
    const removeCancel = onPoint("cancel:before-write", async (detail) => {
      if (detail.runId !== runId) return;
      removeCancel();
      cancelRead();
      await new Promise<void>((go) => {
        releaseCancel = go;
      });
    });
    const removePark = onPoint("claim:before-park", async (detail) => {
      if (detail.runId !== runId) return;
      removePark();
      cancelled = stack.api("POST", `/runs/${runId}/cancel`);
      await cancelHasRead;
    });
    try {
      expect((await claim(messageOf(runId), "w2")).kind).toBe("parked");
      releaseCancel();
      expect(((await cancelled) as { status: number }).status).toBe(202);
    } finally {
      removeCancel();
      removePark();
    }
    // parked in a cancelled run: the run keeps its place in the sweeper's index, and its look's
    // wind-down cancels the execution
    expect(await readItem<TaskRecord>(keys.task(runId, "limited"))).toMatchObject({
      status: "queued",
      slot: "waiting",
    });
    expect((await readItem<Record<string, unknown>>(keys.run(runId)))?.sweepShard).toBeDefined();
    await advance(runId, [], new Date(), { look: true });
    expect(await readItem<TaskRecord>(keys.task(runId, "limited"))).toMatchObject({ status: "cancelled" });
  });

  it("seed 1838 (duplicate): a give-back that drops the stale entry of a run whose last slot went back meanwhile takes that run's count with it", async () => {
    const name = `found-${randomUUID().slice(0, 8)}`;
    await register(stack, {
      name,
      limits: { actions: { "core.noop": { maxRunning: 2 } } },
      tasks: { a: { action: "core.noop" }, b: { action: "core.noop" } },
    });
    captured.clear();
    const { messageOf } = captured;
    const claimed = async (runId: string, task: string) => {
      const claimedNow = await claim(messageOf(runId, task), `w-${task}`);
      expect(claimedNow.kind).toBe("claimed");
      return (claimedNow as { record: TaskRecord }).record;
    };
    const q = await stack.client.createRun(name);
    const r = await stack.client.createRun(name);
    const qa = await claimed(q.runId, "a");
    const ra = await claimed(r.runId, "a");
    expect((await claim(messageOf(r.runId, "b"), "w-b")).kind).toBe("parked");
    // r is cancelled: its parked b with it (its entry stays in the list, stale); a, its worker alive, runs on
    expect((await stack.api("POST", `/runs/${r.runId}/cancel`)).status).toBe(202);
    expect(await readItem<TaskRecord>(keys.task(r.runId, "b"))).toMatchObject({ status: "cancelled" });
    // q's a ends; its give-back reads the list ([r's b], stale; r holds a slot, so r's count stays).
    // Before it writes, a third run parks behind that entry and r's a ends: its give-back hands its
    // slot to the third run first (served least) and keeps r's count for r's b, still listed. The
    // list is as q's give-back read it again, and r holds no slot any more
    let third: string | undefined;
    const held = await settleWithGiveBackHeld(
      qa,
      (detail) => detail.runId === q.runId,
      async () => {
        third = (await stack.client.createRun(name)).runId;
        expect((await claim(messageOf(third, "a"), "w-third")).kind).toBe("parked");
        expect((await settle(ra, { ok: true, output: null })).kind).not.toBe("lost");
      },
    );
    expect(held).toBe(true);
    // the third run holds the one slot in use; neither q nor r leaves a count behind
    const limit = { ...(await readLimit({ workflow: name, action: "core.noop" })) } as Record<
      string,
      unknown
    >;
    expect(limit).toMatchObject({ active: 1, waiting: [], [`held#${third}`]: 1 });
    expect(Object.keys(limit).filter((k) => k.endsWith(q.runId) || k.endsWith(r.runId))).toEqual([]);
  });
});
