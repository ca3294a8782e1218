/**
 * Redrive, on the local stack: a failed run starts again from its failed tasks and items, with new
 * attempt numbers; nothing that succeeded runs again; of concurrent redrives one wins.
 */
import { describe, expect, it } from "vitest";
import { advance } from "../../lib/engine/advance";
import { countingGuards } from "../../lib/engine/counted";
import { endRunGuards } from "../../lib/engine/end-run";
import { onPoint } from "../../lib/engine/interleave";
import type { TaskRecord } from "../../lib/engine/task-record";
import { completionOf } from "../../lib/queue";
import { keys } from "../../lib/store/keys";
import { readItem, readRun } from "../../lib/store/run-state";
import { eventsOf, register, waitForRun } from "../helpers/runs";
import { useSink } from "../helpers/sink";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack();
const sinkFixture = useSink();
const sink = () => sinkFixture.sink;

const call = (path: string, body: unknown) => ({
  action: "core.http",
  input: { url: `${sink().url}${path}`, body },
  retry: { maxAttempts: 1 },
});

describe("redrive", () => {
  it("after a failing item, only that item and what follows it run again", async () => {
    await register(stack, {
      name: "redrive-items",
      tasks: {
        before: { ...call("/before", {}), next: [{ do: ["fan"] }] },
        fan: {
          ...call("/item/{% item %}", { item: "{% item %}" }),
          withItems: "{% [0..4] %}",
          next: [{ do: ["after"] }],
        },
        after: call("/after", "{% tasks.fan.output %}"),
      },
    });
    sink().reset();
    sink().respond("/item/2", [400, 200]); // fails once (not retryable), then accepts
    const created = await stack.client.createRun("redrive-items");
    const failed = await waitForRun(stack, created.runId);
    expect(failed.status).toBe("failed");
    expect(failed.tasks.fan.items).toMatchObject({ total: 5, succeeded: 4, failed: 1 });
    expect(sink().requestsTo("/after")).toHaveLength(0);

    const redriven = await stack.api("POST", `/runs/${created.runId}/redrive`);
    expect(redriven.status).toBe(202);
    expect(redriven.body).toEqual({ runId: created.runId, status: "running", redriveCount: 1 });
    const run = await waitForRun(stack, created.runId);
    expect(run.status).toBe("succeeded");
    expect(run.redriveCount).toBe(1);
    expect(run.tasks.fan.items).toMatchObject({ total: 5, succeeded: 5, failed: 0 });

    // each call once, except item 2: twice, its second call a new attempt of the same execution
    expect(sink().requestsTo("/before")).toHaveLength(1);
    for (const item of [0, 1, 3, 4]) expect(sink().requestsTo(`/item/${item}`)).toHaveLength(1);
    const item2 = sink().requestsTo("/item/2");
    expect(item2.map((r) => r.headers["x-onceflow-attempt"])).toEqual(["1", "2"]);
    expect(new Set(item2.map((r) => r.headers["idempotency-key"])).size).toBe(1);
    const after = sink().requestsTo("/after");
    expect(after).toHaveLength(1);
    // the successor sees every item's output, the redriven one's included
    expect(after[0]?.json).toEqual([0, 1, 2, 3, 4].map(() => ({ status: 200, body: { ok: true } })));

    const events = await eventsOf(stack, created.runId);
    const redrive = events.find((e) => e.type === "Redriven");
    expect(redrive?.detail).toMatchObject({ redriveCount: 1, tasks: ["fan"], items: { fan: 1 } });
    expect(events.filter((e) => e.type === "RunFailed")).toHaveLength(1);
    expect(events.at(-1)?.type).toBe("RunSucceeded");
  }, 60_000);

  it("a late duplicate of a put-back item's completion, between the redrive and its fill, counts nothing", async () => {
    // items a redrive put back stay counted, in the task's `redo` list, until a fill queues them
    // again; a duplicate's countdown must count nothing and leave the redrive whole (two of four items
    // fail, one is tolerated, so the duplicate alone fails nothing and the countdown refills). That it
    // never writes the item twice in one transaction is shown by the unit test of countDown: DynamoDB
    // Local judges the conditions first and answers ConditionalCheckFailed, where DynamoDB rejects it
    await register(stack, {
      name: "redrive-late",
      tasks: {
        fan: {
          ...call("/late/{% item %}", { item: "{% item %}" }),
          withItems: "{% [0..3] %}",
          toleratedFailurePercentage: 25,
        },
      },
    });
    sink().reset();
    sink().respond("/late/1", [400, 200]);
    sink().respond("/late/2", [400, 200]);
    const created = await stack.client.createRun("redrive-late");
    const runId = created.runId;
    expect((await waitForRun(stack, runId)).status).toBe("failed");
    const failed = (await eventsOf(stack, runId)).find((e) => e.type === "TaskFailed" && e.item === 1);
    const duplicate = {
      runId,
      task: "fan",
      item: 1,
      attempt: failed?.attempt as number,
      outcome: "failed" as const,
    };
    let lateAdvance: Promise<unknown> | undefined;
    const remove = onPoint("redrive:after-commit", async () => {
      lateAdvance = advance(runId, [duplicate]);
      await lateAdvance;
    });
    try {
      expect((await stack.api("POST", `/runs/${runId}/redrive`)).status).toBe(202);
    } finally {
      remove();
    }
    await expect(lateAdvance).resolves.toBeDefined();
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("succeeded");
    expect(run.tasks.fan.items).toMatchObject({ total: 4, succeeded: 4, failed: 0 });
    for (const item of [1, 2]) expect(sink().requestsTo(`/late/${item}`)).toHaveLength(2);
    for (const item of [0, 3]) expect(sink().requestsTo(`/late/${item}`)).toHaveLength(1);
  });

  it("a failed plain task runs again with its retry policy counted afresh; concurrent redrives: one wins", async () => {
    await register(stack, {
      name: "redrive-plain",
      tasks: {
        flaky: {
          ...call("/flaky", {}),
          retry: { maxAttempts: 2, intervalSeconds: 0 },
          next: [{ do: ["last"] }],
        },
        last: call("/last", {}),
      },
    });
    sink().reset();
    sink().respond("/flaky", [500, 500, 500, 200]); // two attempts fail, then a redrive: 500, 200
    const created = await stack.client.createRun("redrive-plain");
    expect((await waitForRun(stack, created.runId)).status).toBe("failed");

    const answers = await Promise.all(
      Array.from({ length: 5 }, () => stack.api("POST", `/runs/${created.runId}/redrive`)),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409, 409, 409, 409]);
    expect(answers.find((a) => a.status === 409)?.body.error.code).toBe("RunNotRedrivable");
    const run = await waitForRun(stack, created.runId);
    expect(run.status).toBe("succeeded");
    expect(run.tasks.flaky.attempts).toBe(4);
    expect(
      sink()
        .requestsTo("/flaky")
        .map((r) => r.headers["x-onceflow-attempt"]),
    ).toEqual(["1", "2", "3", "4"]);
    expect(sink().requestsTo("/last")).toHaveLength(1);
  }, 60_000);

  it("only a failed run can be redriven", async () => {
    await register(stack, { name: "redrive-ok", tasks: { a: { action: "core.noop" } } });
    const created = await stack.client.createRun("redrive-ok");
    expect((await waitForRun(stack, created.runId)).status).toBe("succeeded");
    const answer = await stack.api("POST", `/runs/${created.runId}/redrive`);
    expect(answer.status).toBe(409);
    expect(answer.body.error).toMatchObject({ code: "RunNotRedrivable", status: "succeeded" });
    expect((await stack.api("POST", "/runs/no-such-run/redrive")).status).toBe(404);
    const pending = await stack.client.createRun("redrive-ok", { start: false });
    expect((await stack.api("POST", `/runs/${pending.runId}/redrive`)).body.error).toMatchObject({
      code: "RunNotRedrivable",
      status: "pending",
    });
  });

  it("a keyed run takes its key again: 409 ConcurrencyKeyBusy while another run holds it", async () => {
    await register(stack, {
      name: "redrive-keyed",
      concurrencyKey: "{% input.repo %}",
      tasks: { step: call("/keyed/{% input.n %}", {}) },
    });
    sink().reset();
    sink().respond("/keyed/1", [400, 200]);
    const first = await stack.client.createRun("redrive-keyed", { input: { repo: "r", n: 1 } });
    expect((await waitForRun(stack, first.runId)).status).toBe("failed");
    const held = sink().holdNext(1);
    const second = await stack.client.createRun("redrive-keyed", { input: { repo: "r", n: 2 } });
    await held; // the second run holds the key, its call in flight
    const busy = await stack.api("POST", `/runs/${first.runId}/redrive`);
    expect(busy.status).toBe(409);
    expect(busy.body.error).toMatchObject({ code: "ConcurrencyKeyBusy", holder: second.runId });
    sink().release();
    expect((await waitForRun(stack, second.runId)).status).toBe("succeeded");
    expect((await stack.api("POST", `/runs/${first.runId}/redrive`)).status).toBe(202);
    expect((await waitForRun(stack, first.runId)).status).toBe("succeeded");
    // the key is free again: a third run starts at once
    const third = await stack.client.createRun("redrive-keyed", { input: { repo: "r", n: 3 } });
    expect(third.status).toBe("running");
  });

  /**
   * A handler that read the run before it failed must not end it once it was redriven: endRun is
   * fenced on the redrive count it read. Pinned with interleaving points, not a seed: the worker's
   * advance that would end the run as failed is held at its write while another advance ends it,
   * the run is redriven and its task runs again, then the held one writes. Taken away, the fence
   * is caught: the redriven run ends failed under its running task.
   */
  async function staleEndAfterRedrive(name: string): Promise<{ status: string; runFailed: number }> {
    await register(stack, { name, tasks: { only: call(`/${name}`, {}) } });
    sink().reset();
    sink().respond(`/${name}`, [400, 200]); // fails once (not retryable), then accepts
    let releaseStale: () => void = () => {};
    let staleWrote: (ended: boolean) => void = () => {};
    const staleHeld = new Promise<void>((held) => {
      let first = true;
      const remove = onPoint("end-run:before-write", async (detail) => {
        if (!first || (await readRun(detail.runId as string))?.workflow !== name) return;
        first = false; // the first handler to end it: the worker's, which read the run before it failed
        remove();
        held();
        await new Promise<void>((go) => {
          releaseStale = go;
        });
      });
    });
    const staleDone = new Promise<boolean>((done) => {
      staleWrote = done;
    });
    const { runId } = await stack.client.createRun(name);
    await staleHeld;
    // another advance of the same run ends it
    await advance(runId);
    expect((await stack.client.getRun(runId)).status).toBe("failed");
    const attempt2 = sink().holdNext(1);
    expect((await stack.api("POST", `/runs/${runId}/redrive`)).status).toBe(202);
    await attempt2; // the redriven task runs, held by the sink
    const removeAfter = onPoint("end-run:after-write", (detail) => {
      if (detail.runId !== runId) return;
      removeAfter();
      staleWrote(detail.ended as boolean);
    });
    releaseStale();
    await staleDone; // the held handler wrote (or was refused)
    sink().release();
    const run = await waitForRun(stack, runId);
    const runFailed = (await eventsOf(stack, runId)).filter((e) => e.type === "RunFailed").length;
    return { status: run.status, runFailed };
  }

  it("a handler that read the run before it failed does not end it once redriven (endRun's fence on redriveCount)", async () => {
    expect(await staleEndAfterRedrive("redrive-stale-end")).toEqual({ status: "succeeded", runFailed: 1 });
  });

  it("that fence taken away is caught: the redriven run ends failed under its running task", async () => {
    endRunGuards.redrives = false;
    try {
      expect(await staleEndAfterRedrive("redrive-stale-end-unguarded")).toEqual({
        status: "failed",
        runFailed: 2,
      });
    } finally {
      endRunGuards.redrives = true;
    }
  });

  /**
   * A late completion of an item's earlier incarnation (its failure, delivered again after the
   * redrive put it back and a fill queued it anew) counts nothing: only a completion of the
   * redrive's own incarnation does (counted.ts). Pinned, not a seed: the item's second call is held
   * at the sink while the stale completion is handed to `advance`. Taken away, the stale failure
   * counts the new incarnation failed and the redriven run fails again.
   */
  async function lateCompletionAfterRedrive(name: string): Promise<{ status: string; items: unknown }> {
    await register(stack, {
      name,
      tasks: { fan: { ...call(`/${name}/{% item %}`, { item: "{% item %}" }), withItems: "{% [0..1] %}" } },
    });
    sink().reset();
    sink().respond(`/${name}/0`, [400, 200]); // fails once (not retryable), then accepts
    const { runId } = await stack.client.createRun(name);
    expect((await waitForRun(stack, runId)).status).toBe("failed");
    const failed = (await readItem<TaskRecord>(keys.item(runId, "fan", 0))) as TaskRecord;
    const held = sink().holdNext(1);
    expect((await stack.api("POST", `/runs/${runId}/redrive`)).status).toBe(202);
    await held; // the item's new incarnation runs, held by the sink
    await advance(runId, [completionOf(failed, "failed")]);
    sink().release();
    const run = await waitForRun(stack, runId);
    return { status: run.status, items: run.tasks.fan.items };
  }

  it("a late completion of an item's earlier incarnation counts nothing once it is queued again", async () => {
    expect(await lateCompletionAfterRedrive("redrive-late-item")).toMatchObject({
      status: "succeeded",
      items: { total: 2, succeeded: 2, failed: 0 },
    });
  });

  it("that guard taken away is caught: the stale failure counts, and the redriven run fails again", async () => {
    countingGuards.incarnation = false;
    try {
      expect((await lateCompletionAfterRedrive("redrive-late-item-unguarded")).status).toBe("failed");
    } finally {
      countingGuards.incarnation = true;
    }
  });
});
