/**
 * Concurrency keys (F5, I5), on the local stack: runs whose `concurrencyKey` gives the same string
 * never run at the same time, a `pending` run holds its key too, waiting runs start in the order
 * they queued, and `onConcurrencyConflict: reject` refuses all but one.
 */
import { describe, expect, it } from "vitest";
import { eventsOf, register, waitForRun } from "../helpers/runs";
import { type SinkRequest, useSink } from "../helpers/sink";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack({ pollerConcurrency: { worker: 20, advance: 4 } });
const sinkFixture = useSink();
const sink = () => sinkFixture.sink;

/** Two sink calls per run (`/step` twice), keyed by `input.repo`. */
function keyed(name: string, extra: Record<string, unknown> = {}) {
  const call = (step: number) => ({
    action: "core.http",
    input: { url: `${sink().url}/step`, body: { run: "{% input.n %}", step } },
  });
  return {
    name,
    concurrencyKey: "{% input.repo %}",
    ...extra,
    tasks: { first: { ...call(1), next: [{ do: ["second"] }] }, second: call(2) },
  };
}

const bodyOf = (r: SinkRequest) => r.json as { run: number; step: number };

/** Each run's span from its first call's arrival to its last call's answer. */
function spans(requests: SinkRequest[]): Map<number, { from: number; to: number }> {
  const byRun = new Map<number, { from: number; to: number }>();
  for (const r of requests) {
    const { run } = bodyOf(r);
    const span = byRun.get(run) ?? { from: r.at, to: r.answeredAt ?? r.at };
    byRun.set(run, { from: Math.min(span.from, r.at), to: Math.max(span.to, r.answeredAt ?? r.at) });
  }
  return byRun;
}

describe("concurrency keys", () => {
  it("20 runs with one key created at the same instant never overlap, and run in the order they queued", async () => {
    await register(stack, keyed("deploy"));
    sink().reset();
    sink().delay("/step", 20);
    const firstCall = sink().holdNext(1); // the holder's first call waits until the queue is read
    const created = await Promise.all(
      Array.from({ length: 20 }, (_, n) => stack.client.createRun("deploy", { input: { repo: "r1", n } })),
    );
    expect(created.map((c) => c.created)).toEqual(Array(20).fill(true));
    const statuses = created.map((c) => c.status).sort();
    expect(statuses).toEqual(["running", ...Array(19).fill("waiting")]);
    await firstCall;

    // the queue as the API shows it: each waiting run's place behind the holder
    const views = await Promise.all(created.map((c) => stack.client.getRun(c.runId)));
    const holder = created.findIndex((c) => c.status === "running");
    const order = [holder];
    for (const [n, view] of views.entries()) {
      if (n === holder) continue;
      expect(view.waitingFor?.holder).toBe(created[holder]?.runId);
      order[view.waitingFor?.position ?? -1] = n;
    }
    expect(new Set(order).size).toBe(20);
    sink().release();

    const runs = await Promise.all(created.map((c) => waitForRun(stack, c.runId, undefined, 120_000)));
    expect(runs.map((r) => r.status)).toEqual(Array(20).fill("succeeded"));
    const calls = sink().requestsTo("/step");
    expect(calls).toHaveLength(40);
    // never two runs at once: each run's span ends before the next one's begins
    const byRun = spans(calls);
    const inOrder = order.map((n) => byRun.get(n) as { from: number; to: number });
    for (let k = 1; k < inOrder.length; k++)
      expect(
        inOrder[k]?.from,
        `run ${order[k]} started before run ${order[k - 1]} ended`,
      ).toBeGreaterThanOrEqual(inOrder[k - 1]?.to as number);
    // the calls arrived in queue order
    expect([...new Set(calls.map((r) => bodyOf(r).run))]).toEqual(order);
  }, 180_000);

  it("with onConcurrencyConflict: reject, one of 20 simultaneous creates wins, 19 get 409 naming it", async () => {
    await register(stack, keyed("deploy-once", { onConcurrencyConflict: "reject" }));
    sink().reset();
    const created = await Promise.all(
      Array.from({ length: 20 }, (_, n) =>
        stack.api("POST", "/workflows/deploy-once/runs", { input: { repo: "r1", n } }),
      ),
    );
    const winners = created.filter((c) => c.status === 201);
    expect(winners).toHaveLength(1);
    const refused = created.filter((c) => c.status === 409);
    expect(refused).toHaveLength(19);
    for (const r of refused) {
      expect(r.body.error.code).toBe("ConcurrencyKeyBusy");
      expect(r.body.error.holder).toBe(winners[0]?.body.runId);
    }
    await waitForRun(stack, winners[0]?.body.runId);
    // once it ended, the key is free again
    const later = await stack.api("POST", "/workflows/deploy-once/runs", { input: { repo: "r1", n: 99 } });
    expect(later.status).toBe(201);
    expect((await waitForRun(stack, later.body.runId)).status).toBe("succeeded");
  }, 60_000);

  it("F5: a pending run holds its key; the run behind it waits, and starts by itself when the first ends", async () => {
    await register(stack, keyed("release"));
    sink().reset();
    const pending = await stack.client.createRun("release", { input: { repo: "r2", n: 1 }, start: false });
    expect(pending.status).toBe("pending");
    const second = await stack.client.createRun("release", { input: { repo: "r2", n: 2 } });
    expect(second.status).toBe("waiting");
    const view = await stack.client.getRun(second.runId);
    expect(view.waitingFor).toEqual({ concurrencyKey: "r2", holder: pending.runId, position: 1 });
    // a trigger of the waiting run is refused: it is not pending
    const early = await stack.api("POST", `/runs/${second.runId}/trigger`);
    expect(early.status).toBe(409);
    expect(early.body.error.status).toBe("waiting");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(sink().requestsTo("/step")).toHaveLength(0); // nothing ran while the first was pending

    expect((await stack.api("POST", `/runs/${pending.runId}/trigger`)).status).toBe(202);
    const [first, next] = await Promise.all([
      waitForRun(stack, pending.runId),
      waitForRun(stack, second.runId),
    ]);
    expect([first.status, next.status]).toEqual(["succeeded", "succeeded"]);
    const byRun = spans(sink().requestsTo("/step"));
    expect(byRun.get(2)?.from).toBeGreaterThanOrEqual(byRun.get(1)?.to as number);
    const types = (await eventsOf(stack, second.runId)).map((e) => e.type);
    expect(types.slice(0, 4)).toEqual(["RunCreated", "LockWaiting", "LockAcquired", "RunStarted"]);
    expect((await eventsOf(stack, pending.runId)).map((e) => e.type)).toContain("LockReleased");
  }, 60_000);

  it("cancelling a waiting run takes it off the queue; cancelling the holder passes the key on", async () => {
    await register(stack, keyed("cancel-keyed"));
    sink().reset();
    const held = sink().holdNext(1);
    const create = (n: number) => stack.client.createRun("cancel-keyed", { input: { repo: "r3", n } });
    const a = await create(1);
    await held; // a's first call is in flight
    const b = await create(2);
    const c = await create(3);
    expect([b.status, c.status]).toEqual(["waiting", "waiting"]);
    expect((await stack.api("POST", `/runs/${b.runId}/cancel`)).status).toBe(202);
    expect((await stack.client.getRun(c.runId)).waitingFor?.position).toBe(1);
    expect((await stack.api("POST", `/runs/${a.runId}/cancel`)).status).toBe(202);
    // a's action is still running: c waits for it to end before it gets the key
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await stack.client.getRun(c.runId)).status).toBe("waiting");
    sink().release();
    expect((await waitForRun(stack, c.runId)).status).toBe("succeeded");
    expect((await waitForRun(stack, a.runId)).status).toBe("cancelled");
    expect((await waitForRun(stack, b.runId)).status).toBe("cancelled");
    const runsCalled = new Set(
      sink()
        .requestsTo("/step")
        .map((r) => bodyOf(r).run),
    );
    expect(runsCalled).toEqual(new Set([1, 3]));
    const byRun = spans(sink().requestsTo("/step"));
    expect(byRun.get(3)?.from).toBeGreaterThanOrEqual(byRun.get(1)?.to as number);
  }, 60_000);

  it("runs with different keys, or without a key, are not held up", async () => {
    await register(stack, keyed("parallel"));
    sink().reset();
    const held = sink().holdNext(2);
    const [x, y] = await Promise.all(
      ["r4", "r5"].map((repo, n) => stack.client.createRun("parallel", { input: { repo, n } })),
    );
    expect([x?.status, y?.status]).toEqual(["running", "running"]);
    await held; // both first calls are in flight at once
    sink().release();
    expect((await waitForRun(stack, x?.runId as string)).status).toBe("succeeded");
    expect((await waitForRun(stack, y?.runId as string)).status).toBe("succeeded");
  }, 60_000);

  it("a key that does not evaluate to a string is a 400 that creates nothing", async () => {
    await register(stack, keyed("bad-key"));
    const response = await stack.api("POST", "/workflows/bad-key/runs", { input: { n: 1 } });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe("InvalidInput");
    expect(response.body.error.details[0].path).toBe("concurrencyKey");
  });
});
