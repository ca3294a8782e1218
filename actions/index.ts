import { registerAction } from "../lib/actions/registry";

/**
 * Your own actions: register a TypeScript function by name, then use the name as a task's `action`.
 * This module is imported by the API (to validate definitions) and by the worker (to run them).
 */
registerAction("example.greet", (input) => {
  const name = (input as { name?: unknown } | null)?.name;
  return { greeting: `Hello, ${typeof name === "string" ? name : "world"}!` };
});
