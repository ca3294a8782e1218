import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sqs } from "../../lib/clients";
import { config } from "../../lib/config";
import { planTasks, taskCreation } from "../../lib/engine/dispatch";
import { lookAtTasks } from "../../lib/engine/look";
import { sweep } from "../../lib/engine/sweep";
import { sweepShard } from "../../lib/engine/task-record";
import { historyEvent } from "../../lib/store/events";
import { keys } from "../../lib/store/keys";
import { type RunRecord, readRunState } from "../../lib/store/run-state";
import { transact } from "../../lib/store/transaction";
import { getLatestWorkflow } from "../../lib/workflows";
import { eventsOf, register, waitForRun } from "../helpers/runs";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack();

const chain = {
  name: "chain",
  tasks: {
    a: { action: "core.echo", input: { from: "a" }, next: [{ do: ["b"] }] },
    b: { action: "core.echo", input: { saw: "{% tasks.a.output.from %}" } },
  },
};

/**
 * What createRun writes in its transaction, without the SQS send that follows it: the state a
 * process leaves when it dies between the two. `patch` changes the start execution first; the
 * run's next look is `lookAt` (a look due now unless told otherwise).
 */
async function runLeftByACrash(
  patch: Record<string, unknown> = {},
  lookAt = new Date(Date.now() - 1000),
): Promise<string> {
  const { name, version, definition } = await getLatestWorkflow("chain");
  const runId = randomUUID();
  const now = new Date().toISOString();
  const [record] = await planTasks(runId, definition, ["a"], { input: {}, tasks: {} });
  const outcome = await transact([
    {
      Put: {
        TableName: config.tableName(),
        Item: {
          ...keys.run(runId),
          runId,
          workflow: name,
          version,
          status: "running",
          input: {},
          createdAt: now,
          startedAt: now,
          sweepShard: sweepShard(runId),
          sweepAt: lookAt.toISOString(),
        },
      },
    },
    historyEvent(runId, "RunStarted"),
    ...taskCreation({ ...(record as NonNullable<typeof record>), ...patch }),
  ]);
  expect(outcome.ok).toBe(true);
  return runId;
}

const later = (seconds: number) => new Date(Date.now() + seconds * 1000);
const past = () => new Date(Date.now() - 1000).toISOString();

describe("recovery by the sweeper's look at the run (I6)", () => {
  it("an execution created but never sent (crash between the put and the SQS send) is sent again and the run finishes", async () => {
    await register(stack, chain);
    // the execution fell due, the run's look comes in 30 s
    const runId = await runLeftByACrash({ sweepAt: past() }, later(30));
    expect((await sweep(later(10))).acted).toBe(0); // the run's look is not due yet: nothing re-sent
    expect((await stack.client.getRun(runId)).tasks.a?.status).toBe("queued");
    expect((await sweep(later(31))).acted).toBeGreaterThanOrEqual(1); // the look, which re-sends it
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("succeeded");
    expect(run.output).toEqual({ b: { saw: "a" } });
    expect(run.tasks.a.attempts).toBe(1);
  });

  it("an execution whose worker died (lease expired) is claimed again as its next attempt", async () => {
    await register(stack, chain);
    const runId = await runLeftByACrash({
      status: "running",
      attempt: 1,
      leaseUntil: past(),
      sweepAt: past(),
    });
    expect((await sweep()).acted).toBeGreaterThanOrEqual(1);
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("succeeded");
    expect(run.tasks.a.attempts).toBe(2);
    const events = await eventsOf(stack, runId);
    expect(events.find((e) => e.type === "TaskRetrying")?.detail?.error?.code).toBe("LeaseExpired");
  });

  it("a live lease moves the run's next look up to its end; a look after it re-sends the execution", async () => {
    await register(stack, chain);
    const leaseUntil = later(12).toISOString();
    const runId = await runLeftByACrash(
      { status: "running", attempt: 1, leaseUntil, sweepAt: past() },
      later(30),
    );
    const { run, tasks } = await readRunState(runId);
    await lookAtTasks(run as RunRecord, tasks);
    expect((await readRunState(runId)).run?.sweepAt).toBe(leaseUntil);
  });

  it("looks racing over the same overdue execution send it once (one dedup id)", async () => {
    await register(stack, chain);
    const runId = await runLeftByACrash({ sweepAt: past() }, later(30));
    const { run, tasks } = await readRunState(runId);
    const sent: { group?: string; dedup?: string }[] = [];
    const middleware = (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
      const input = (
        args as {
          input: {
            Entries?: { MessageBody?: string; MessageGroupId?: string; MessageDeduplicationId?: string }[];
          };
        }
      ).input;
      for (const entry of input.Entries ?? []) {
        const body = JSON.parse(entry.MessageBody ?? "{}") as { runId?: string; task?: string };
        if (body.runId === runId && body.task === "a")
          sent.push({ group: entry.MessageGroupId, dedup: entry.MessageDeduplicationId });
      }
      return next(args);
    };
    sqs().middlewareStack.add(middleware as never, { step: "initialize", name: "recordResends" });
    try {
      const at = new Date();
      await Promise.all(Array.from({ length: 4 }, () => lookAtTasks(run as RunRecord, tasks, at)));
    } finally {
      sqs().middlewareStack.remove("recordResends");
    }
    expect(sent).toHaveLength(4);
    // every look used the same dedup id (SQS takes one), in a group of the re-send's own
    expect(new Set(sent.map((s) => s.dedup)).size).toBe(1);
    expect(sent.every((s) => s.group?.startsWith("own/"))).toBe(true);
    const done = await waitForRun(stack, runId);
    expect(done.status).toBe("succeeded");
    expect(done.tasks.a.attempts).toBe(1);
  });
});
