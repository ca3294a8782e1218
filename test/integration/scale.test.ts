import { expect, it } from "vitest";
import { register, waitForRun } from "../helpers/runs";
import { useLocalStack } from "../helpers/stack";

// `npm run test:scale` runs the 10,000 items of the issue; npm test a tenth of it
const ITEMS = Number(process.env.SCALE_ITEMS ?? 1_000);
const stack = useLocalStack({ pollerConcurrency: { worker: 32, advance: 4 } });

it(`a with-items task of ${ITEMS} items with concurrency 100 completes`, async () => {
  await register(stack, {
    name: "scale",
    tasks: {
      each: {
        action: "core.echo",
        withItems: "{% [1..input.n] %}",
        concurrency: 100,
        input: "{% index %}",
        next: [{ do: ["after"] }],
      },
      after: {
        action: "core.echo",
        input: { count: "{% $count(tasks.each.output) %}", last: "{% tasks.each.output[-1] %}" },
      },
    },
    output: "{% tasks.after.output %}",
  });
  const started = Date.now();
  const { runId } = await stack.client.createRun("scale", { input: { n: ITEMS } });
  const run = await waitForRun(stack, runId, undefined, 1_200_000);
  console.log(`${ITEMS} items in ${Date.now() - started} ms`);
  expect(run.status).toBe("succeeded");
  expect(run.output).toEqual({ count: ITEMS, last: ITEMS - 1 });
  expect(run.tasks.each.items).toEqual({ total: ITEMS, queued: 0, running: 0, succeeded: ITEMS, failed: 0 });
}, 1_300_000);
