import { defineAction } from "../lib/actions";

/**
 * Your own actions: define a TypeScript function by name, then use the name as a task's `action`.
 * This module is imported by the API (to validate definitions) and by the worker (to run them).
 */
defineAction({
  name: "example.greet",
  // checked before `run` is called; `input` is typed from it: {name?: string; ...}
  input: { type: "object", properties: { name: { type: "string" } } },
  run: (input) => ({ greeting: `Hello, ${input.name ?? "world"}!` }),
});
