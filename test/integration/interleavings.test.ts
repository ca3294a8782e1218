import { describe, expect, it } from "vitest";
import { handler as advanceHandler } from "../../functions/advance";
import { handler as workerHandler } from "../../functions/worker";
import { barrier } from "../../lib/engine/interleave";
import { lambdaContext, sqsEvent } from "../helpers/lambda-events";
import { eventsOf, register, waitForRun } from "../helpers/runs";
import { useSink } from "../helpers/sink";
import { useLocalStack } from "../helpers/stack";

/**
 * Races forced at named interleaving points (lib/engine/interleave.ts), rather than hoped for:
 * every handler is held at the point until all of them are there, then all go at once.
 */
const stack = useLocalStack();
const sinkFixture = useSink();
const sink = () => sinkFixture.sink;

const within = <T>(promise: Promise<T>, ms: number, what: string) =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not reached`)), ms)),
  ]);

describe("forced interleavings", () => {
  it("three workers that all read the queued execution before any claims it: one runs the action", async () => {
    await register(stack, {
      name: "claim-race",
      tasks: { only: { action: "core.http", input: { url: `${sink().url}/only` } } },
    });
    for (let round = 0; round < 5; round++) {
      sink().reset();
      const allRead = barrier("claim:before-write", 3);
      const { runId } = await stack.client.createRun("claim-race", { input: { round } });
      // the stack's own worker is the first; two more take the same message
      const direct = [0, 1].map(() => workerHandler(sqsEvent([{ runId, task: "only" }]), lambdaContext));
      await within(allRead, 10_000, "three readers");
      await Promise.all(direct);
      const run = await waitForRun(stack, runId);
      expect(run.status).toBe("succeeded");
      expect(sink().requestsTo("/only")).toHaveLength(1);
      expect((await eventsOf(stack, runId)).filter((e) => e.type === "TaskStarted")).toHaveLength(1);
    }
  });

  it("two countdowns that read the same counters: each item counted once, the successor dispatched once", async () => {
    await register(stack, {
      name: "count-race",
      tasks: {
        each: {
          action: "core.http",
          withItems: "{% [0, 1, 2] %}",
          input: { url: `${sink().url}/item` },
          next: [{ do: ["after"] }],
        },
        after: { action: "core.http", input: { url: `${sink().url}/after` } },
      },
    });
    for (let round = 0; round < 5; round++) {
      sink().reset();
      const held = sink().holdNext(3);
      const { runId } = await stack.client.createRun("count-race", { input: { round } });
      await held;
      const sameCounters = barrier("countdown:before-commit", 2);
      sink().release();
      // and the same three completions again, straight into advance, racing the queued ones
      const completions = [0, 1, 2].map((item) => ({
        runId,
        task: "each",
        item,
        attempt: 1,
        outcome: "succeeded",
      }));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const duplicate = advanceHandler(sqsEvent(completions), lambdaContext);
      await within(sameCounters, 10_000, "two countdowns");
      await duplicate;
      const run = await waitForRun(stack, runId);
      expect(run.status).toBe("succeeded");
      expect(run.tasks.each.items).toEqual({ total: 3, queued: 0, running: 0, succeeded: 3, failed: 0 });
      expect(sink().requestsTo("/after")).toHaveLength(1);
      const events = await eventsOf(stack, runId);
      expect(
        events.filter((e) => e.type === "TaskSucceeded" && e.task === "each" && e.item === undefined),
      ).toHaveLength(1);
      expect(events.filter((e) => e.type === "TaskQueued" && e.task === "after")).toHaveLength(1);
    }
  });
});
