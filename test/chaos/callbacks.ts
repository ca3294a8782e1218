/**
 * Callback tasks under the chaos checker's faults: a with-items `core.callback` task notifies the
 * sink; for each notify the checker calls back three times at once with the same body (as a
 * client retrying would), sometimes sends a heartbeat first, then a different body. Whatever the
 * faults (the notify itself may fail and be retried with a new token; handlers crash, messages are
 * duplicated and redelivered), each execution is completed by exactly one callback, a different
 * body never wins afterwards, and the task after the fan-out runs once with every output.
 */
import type { LocalStack } from "../../infra/local/stack";
import { listEvents } from "../../lib/store/events";
import type { Sink } from "../helpers/sink";
import { callApi, persist } from "../helpers/stack";

const RUNS = 4;
const ITEMS = 3;

interface Notify {
  token: string;
  runId: string;
  item: number;
}

export async function callbacksCompleteOnce(stack: LocalStack, sink: Sink, seed: number): Promise<string[]> {
  const name = `chaos-${seed}-callback`;
  const definition = {
    name,
    tasks: {
      ask: {
        action: "core.callback",
        withItems: Array.from({ length: ITEMS }, (_, k) => k),
        input: { notifyUrl: `${sink.url}/callback-notify` },
        timeoutSeconds: 120,
        retry: { maxAttempts: 10, intervalSeconds: 0.2, backoffRate: 1 },
        next: [{ do: ["after"] }],
      },
      after: {
        action: "core.http",
        input: { url: `${sink.url}/callback-after`, body: "{% tasks.ask.output %}" },
        retry: { maxAttempts: 10, intervalSeconds: 0.2, backoffRate: 1 },
      },
    },
  };
  const registered = await persist(stack.apiUrl, "PUT", `/workflows/${name}`, definition);
  if (registered.status >= 300) throw new Error(`registration failed: ${registered.text}`);
  const runIds = await Promise.all(
    Array.from({ length: RUNS }, async () => {
      const created = await persist(stack.apiUrl, "POST", `/workflows/${name}/runs`, {});
      return created.body.runId as string;
    }),
  );
  const ours = new Set(runIds);
  const violations: string[] = [];
  const changed = new Map<string, number>(); // per execution: callbacks answered `changed: true`
  const handled = new Set<string>();
  const answering: Promise<void>[] = [];

  const answer = async ({ token, runId, item }: Notify, n: number) => {
    const path = `/callbacks/${encodeURIComponent(token)}`;
    if (n % 2 === 0) {
      const beat = await persist(stack.apiUrl, "POST", `${path}/heartbeat`);
      if (![200, 404].includes(beat.status)) violations.push(`callback: heartbeat answered ${beat.status}`);
    }
    const body = { output: { item } };
    const same = await Promise.all(
      Array.from({ length: 3 }, () => persist(stack.apiUrl, "POST", path, body)),
    );
    for (const r of same) {
      // 404: the token was replaced (its notify failed and the attempt was retried) or expired
      if (r.status !== 200 && r.status !== 404)
        violations.push(`callback: ${runId}/${item} answered ${r.status}`);
      if (r.body?.changed === true)
        changed.set(`${runId}/${item}`, (changed.get(`${runId}/${item}`) ?? 0) + 1);
    }
    if (same.some((r) => r.status === 200)) {
      const other = await persist(stack.apiUrl, "POST", path, { output: { item, other: true } });
      if (other.status !== 409)
        violations.push(`callback: a different body for ${runId}/${item} answered ${other.status}`);
    }
  };

  const deadline = Date.now() + 180_000;
  const ended = new Map<string, string>();
  while (ended.size < RUNS && Date.now() < deadline) {
    for (const r of sink.requestsTo("/callback-notify")) {
      const notify = r.json as Notify;
      if (!ours.has(notify.runId) || handled.has(notify.token) || r.answeredAt === undefined) continue;
      handled.add(notify.token);
      answering.push(answer(notify, handled.size));
    }
    for (const runId of runIds) {
      if (ended.has(runId)) continue;
      const { body } = await callApi(stack.apiUrl, "GET", `/runs/${runId}`);
      if (["succeeded", "failed", "cancelled"].includes(body?.status)) ended.set(runId, body.status);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await Promise.all(answering);

  for (const runId of runIds) {
    const status = ended.get(runId);
    if (status !== "succeeded") violations.push(`callback: run ${runId} ended ${status ?? "never"}`);
    const received = (await listEvents(runId)).filter((e) => e.type === "CallbackReceived");
    for (let item = 0; item < ITEMS; item++) {
      const count = received.filter((e) => e.item === item).length;
      if (count !== 1) violations.push(`callback: ${runId}/ask/${item} completed by ${count} callbacks`);
      if ((changed.get(`${runId}/${item}`) ?? 0) > 1)
        violations.push(`callback: ${runId}/ask/${item} answered changed: true more than once`);
    }
    const after = sink
      .requestsTo("/callback-after")
      .filter((r) => r.headers["idempotency-key"] === `${runId}/after/-`);
    const succeeded = after.filter((r) => r.answeredAt !== undefined);
    if (succeeded.length === 0) violations.push(`callback: ${runId}/after never called`);
    const expected = JSON.stringify(Array.from({ length: ITEMS }, (_, item) => ({ item })));
    if (after.some((r) => JSON.stringify(r.json) !== expected))
      violations.push(`callback: ${runId}/after got ${after[0]?.body}`);
  }
  return violations;
}
