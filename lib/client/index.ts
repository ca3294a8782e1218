/**
 * onceflow's typed HTTP client (docs/cli.md#the-client). Needs only `fetch`: Node 18+ and
 * browsers. SigV4 signing is in ./sigv4.ts, imported on its own.
 *
 *     const client = createClient({ baseUrl: "http://127.0.0.1:3000" });
 *     const { runId } = await client.createRun("hello", { input: { name: "you" }, idempotencyKey: "k1" });
 *     const run = await client.waitForRun(runId, { timeoutMs: 30_000 });
 */
export {
  type ClientOptions,
  createClient,
  OnceflowClient,
  type OutgoingRequest,
  type SignHook,
  type WaitOptions,
} from "./client";
export { errorFromResponse, isOnceflowError, OnceflowError } from "./errors";
export * from "./types";
