/**
 * The concurrency-limit scenario with every delivery duplicated and handled messages delivered
 * again later (`ONCEFLOW_CHAOS=duplicate,redeliver`): a slot is still never given back twice.
 */
import { describe, it } from "vitest";
import { parseChaos } from "../../infra/local/chaos";
import { chaosStackOptions } from "../chaos/stack-options";
import { runLimited } from "../helpers/limited-runs";
import { useSink } from "../helpers/sink";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack(chaosStackOptions(parseChaos("duplicate,redeliver", "11")));
const sinkFixture = useSink();

describe("concurrency limits under duplicated and redelivered messages", () => {
  it("a limit of 3, 10 runs of 20 items: 3 at once, each item once, counters at 0", async () => {
    await runLimited(stack, sinkFixture.sink, {
      name: "limited",
      runs: 10,
      items: 20,
      maxRunning: 3,
      delayMs: 150,
    });
  }, 300_000);
});
