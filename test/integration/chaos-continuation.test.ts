/**
 * The chaos of the local stack (infra/local/chaos.ts) knows which executions a worker invocation
 * worked on: its batch's, and the successors it ran itself (a continuation, lib/engine/work.ts).
 * A crash while it runs a successor hits that successor, and is reported so: the chaos checker
 * allows a repeat of an execution's call only after a crash that hit it, and measures each crash's
 * stall from the executions it names.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { CrashPlan } from "../../infra/local/chaos";
import { register } from "../helpers/runs";
import { useLocalStack } from "../helpers/stack";

/** The run whose worker dies at its first call for the successor `b`, which it runs itself. */
let target: string | undefined;

const plan: CrashPlan = ({ fn, keys }) =>
  fn === "worker" && target !== undefined && keys.includes(`${target}/b/-`) ? "before" : undefined;

const stack = useLocalStack({
  chaos: { duplicate: false, redeliver: false, crash: 0, seed: 1, plan },
  sweeper: false,
});

describe("a crash while a worker runs a successor itself", () => {
  it("is reported as hitting that successor as well as the message its invocation was given", async () => {
    const name = `continued-${randomUUID().slice(0, 8)}`;
    await register(stack, {
      name,
      tasks: { a: { action: "core.noop", next: [{ do: ["b"] }] }, b: { action: "core.noop" } },
    });
    const { runId } = await stack.client.createRun(name, { start: false });
    target = runId;
    await stack.client.triggerRun(runId);
    const deadline = Date.now() + 20_000;
    const crashOf = () => stack.stack.chaos?.crashes.find((c) => c.keys.includes(`${runId}/b/-`));
    while (!crashOf() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    // the invocation was given a's message, and died at the claim of b, which it ran itself
    expect(crashOf()).toMatchObject({ fn: "worker", keys: [`${runId}/a/-`, `${runId}/b/-`] });
    expect((await stack.client.getRun(runId)).tasks.a?.status).toBe("succeeded");
  });
});
