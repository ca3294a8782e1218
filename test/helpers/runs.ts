import type { LocalStackFixture } from "./stack";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

/** Polls GET /runs/{id} until the run is terminal (or `until` holds), and returns it. */
export async function waitForRun(
  stack: LocalStackFixture,
  runId: string,
  // biome-ignore lint/suspicious/noExplicitAny: tests read run bodies freely.
  until?: (run: any) => boolean,
  timeoutMs = 30_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await stack.api("GET", `/runs/${runId}`);
    if (until ? until(body) : TERMINAL.has(body.status)) return body;
    if (Date.now() > deadline)
      throw new Error(`run ${runId} did not get there in time: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Registers a definition (an object, sent as JSON) and checks it was accepted. */
export async function register(
  stack: LocalStackFixture,
  definition: { name: string; [key: string]: unknown },
): Promise<number> {
  const response = await stack.api("PUT", `/workflows/${definition.name}`, definition);
  if (response.status !== 201 && response.status !== 200) {
    throw new Error(`registration failed: ${response.status} ${response.text}`);
  }
  return response.body.version;
}

/** One entry of `GET /runs/{id}/events`. */
export interface RunEventView {
  seq: number;
  at: string;
  type: string;
  task?: string;
  item?: number;
  attempt?: number;
  detail?: { error?: { code: string; message: string } } & Record<string, unknown>;
}

/** The run's history, from the API. */
export async function eventsOf(stack: LocalStackFixture, runId: string): Promise<RunEventView[]> {
  return (await stack.api("GET", `/runs/${runId}/events`)).body.events;
}
