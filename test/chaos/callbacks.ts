/**
 * Callback tasks under the chaos checker's faults: a with-items `core.callback` task notifies the
 * sink; for each notify the checker calls back three times at once with the same body (as a
 * client retrying would), sometimes sends a heartbeat first, then a different body. Whatever the
 * faults (the notify itself may fail and be retried with a new token; handlers crash, messages are
 * duplicated and redelivered), each execution is completed by exactly one callback, a different
 * body never wins afterwards, and the task after the fan-out runs once with every output.
 */
import { isOnceflowError, isTerminal, type OnceflowClient, OnceflowError } from "../../lib/client";
import { listEvents } from "../../lib/store/events";
import type { Sink } from "../helpers/sink";

const RUNS = 4;
const ITEMS = 3;

interface Notify {
  token: string;
  runId: string;
  item: number;
}

/** The API's answer, or the error it answered with (an OnceflowError with its HTTP status); no answer throws. */
const answered = <T>(call: Promise<T>): Promise<T | OnceflowError> =>
  call.catch((error: unknown) => {
    if (isOnceflowError(error) && error.status > 0) return error;
    throw error;
  });

/** How an answer is told in a violation: its HTTP status, and an error's code. */
const told = (answer: unknown) =>
  answer instanceof OnceflowError ? `${answer.status} ${answer.code}` : "200";

export async function callbacksCompleteOnce(
  client: OnceflowClient,
  sink: Sink,
  seed: number,
): Promise<string[]> {
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
  await client.putWorkflow(name, definition);
  const runIds = await Promise.all(
    Array.from({ length: RUNS }, async () => (await client.createRun(name)).runId),
  );
  const ours = new Set(runIds);
  const violations: string[] = [];
  const changed = new Map<string, number>(); // per execution: callbacks answered `changed: true`
  const handled = new Set<string>();
  const answering: Promise<void>[] = [];

  const answer = async ({ token, runId, item }: Notify, n: number) => {
    if (n % 2 === 0) {
      const beat = await answered(client.heartbeatCallback(token));
      if (beat instanceof OnceflowError && beat.status !== 404)
        violations.push(`callback: heartbeat answered ${told(beat)}`);
    }
    const body = { output: { item } };
    const same = await Promise.all(
      Array.from({ length: 3 }, () => answered(client.completeCallback(token, body))),
    );
    for (const r of same) {
      // 404: the token was replaced (its notify failed and the attempt was retried) or expired
      if (r instanceof OnceflowError) {
        if (r.status !== 404) violations.push(`callback: ${runId}/${item} answered ${told(r)}`);
      } else if (r.changed === true)
        changed.set(`${runId}/${item}`, (changed.get(`${runId}/${item}`) ?? 0) + 1);
    }
    if (same.some((r) => !(r instanceof OnceflowError))) {
      const other = await answered(client.completeCallback(token, { output: { item, other: true } }));
      if (!(other instanceof OnceflowError && other.status === 409))
        violations.push(`callback: a different body for ${runId}/${item} answered ${told(other)}`);
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
      const { status } = await client.getRun(runId);
      if (isTerminal(status)) ended.set(runId, status);
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
