import { setTimeout as sleep } from "node:timers/promises";
import { ActionError } from "../errors";
import { defineAction } from "./define";
import { HTTP_INPUT, httpAction } from "./http";
import { registerAction } from "./registry";

/** The built-in actions of DESIGN.md, registered when this module is imported. */
registerAction("core.noop", () => null);

registerAction("core.echo", (input) => input ?? null);

defineAction({
  name: "core.sleep",
  input: { type: ["object", "null"], properties: { seconds: { type: "number", minimum: 0 } } },
  run: async (input, { signal }) => {
    const seconds = input?.seconds ?? 0;
    await sleep(seconds * 1000, undefined, { signal });
    return { slept: seconds };
  },
});

registerAction("core.fail", (input) => {
  const message = (input as { message?: unknown } | null)?.message;
  throw new ActionError("TaskFailed", typeof message === "string" ? message : "core.fail was called");
});

defineAction({ name: "core.http", input: HTTP_INPUT, run: httpAction });

/** Listed so that definitions validate; the worker suspends such tasks instead (lib/engine/callback.ts). */
registerAction("core.callback", () => {
  throw new Error("core.callback is handled by the engine (lib/engine/callback.ts), never run as an action");
});
