/**
 * `defineAction`: the input type inferred from the schema (or given), checked by `tsc --noEmit`
 * (`npm run typecheck` includes this file: a wrong `expectTypeOf` or an unused `@ts-expect-error`
 * fails it); the input validated before `run`, the output after, through the worker's real attempt
 * path (`runAttempt`), which turns the errors into non-retryable task failures.
 */
import "../../helpers/unit-env";
import "../../../lib/actions/core";
import { describe, expect, expectTypeOf, it, vi } from "vitest";
import { type ActionDefinition, defineAction } from "../../../lib/actions/define";
import { type ActionContext, getAction, registerAction } from "../../../lib/actions/registry";
import { runAttempt } from "../../../lib/engine/attempt";
import type { TaskRecord } from "../../../lib/engine/task-record";
import { InvalidActionInputError, InvalidActionOutputError } from "../../../lib/errors";

const record = (action: string, input: unknown): TaskRecord => ({
  runId: "r1",
  task: "t",
  status: "running",
  attempt: 1,
  workerId: "w1",
  action,
  input,
  timeoutSeconds: 5,
  retry: { maxAttempts: 3, intervalSeconds: 1, backoffRate: 2 },
  createdAt: "x",
});

const context = (): ActionContext => ({
  runId: "r1",
  task: "t",
  attempt: 1,
  idempotencyKey: "r1/t/-",
  signal: new AbortController().signal,
});

const charge = vi.fn();
const chargeAction = defineAction({
  name: "test.charge",
  input: {
    type: "object",
    required: ["amount", "card"],
    additionalProperties: false,
    properties: {
      amount: { type: "integer", minimum: 1 },
      currency: { type: "string", enum: ["EUR", "USD"], default: "EUR" },
      card: {
        type: "object",
        required: ["number"],
        properties: { number: { type: "string", pattern: "^[0-9]{12,19}$" } },
      },
      tags: { type: "array", items: { type: "string" } },
    },
  },
  output: {
    type: "object",
    required: ["chargeId"],
    additionalProperties: false,
    properties: { chargeId: { type: "string" } },
  },
  run: async (input, ctx) => {
    charge(input, ctx);
    // the type is what the schema says: these need no cast
    const cents: number = input.amount * 100;
    const currency: "EUR" | "USD" | undefined = input.currency;
    const number: string = input.card.number;
    if (input.amount === 13) return { chargeId: 13 } as unknown as { chargeId: string }; // a lie, caught at run time
    return { chargeId: `${ctx.idempotencyKey}:${cents}:${currency ?? "EUR"}:${number.slice(-4)}` };
  },
});

describe("defineAction: types", () => {
  it("infers run's input from the input schema and its return type from the output schema", () => {
    type Input = Parameters<typeof chargeAction.run>[0];
    expectTypeOf<Input>().toEqualTypeOf<{
      amount: number;
      currency?: "EUR" | "USD"; // a default is not filled in: it stays optional
      card: { [x: string]: unknown; number: string };
      tags?: string[];
    }>();
    expectTypeOf(chargeAction.run).parameter(1).toEqualTypeOf<ActionContext>();
    expectTypeOf(chargeAction.run).returns.toEqualTypeOf<
      { chargeId: string } | Promise<{ chargeId: string }>
    >();
    expectTypeOf<ActionContext["signal"]>().toEqualTypeOf<AbortSignal>();
    expectTypeOf<ActionContext["item"]>().toEqualTypeOf<number | undefined>();
  });

  it("types a schema given `as const` outside the call, and an output-less action as returning anything", () => {
    const schema = { type: "object", properties: { seconds: { type: "number" } } } as const;
    const defined = defineAction({ name: "test.typed-const", input: schema, run: (input) => input.seconds });
    expectTypeOf(defined.run).parameter(0).toEqualTypeOf<{ [x: string]: unknown; seconds?: number }>();
    expectTypeOf(defined.run).returns.toEqualTypeOf<unknown>();
  });

  it("takes the input (and output) type as type arguments instead", () => {
    interface Greeting {
      name: string;
      loud?: boolean;
    }
    const defined = defineAction<Greeting, { greeting: string }>({
      name: "test.typed-generic",
      input: { type: "object", required: ["name"], properties: { name: { type: "string" } } },
      run: (input) => ({ greeting: input.loud ? input.name.toUpperCase() : input.name }),
    });
    expectTypeOf(defined.run).parameter(0).toEqualTypeOf<Greeting>();
    expectTypeOf(defined.run).returns.toEqualTypeOf<{ greeting: string } | Promise<{ greeting: string }>>();
    expectTypeOf<ActionDefinition<Greeting, string>["run"]>().parameter(0).toEqualTypeOf<Greeting>();
    expect(getAction("test.typed-generic")).toBe(defined.action);
  });

  it("refuses at compile time what the schema rules out", () => {
    defineAction({
      name: "test.typed-wrong-input",
      input: { type: "object", required: ["n"], properties: { n: { type: "number" } } },
      // @ts-expect-error: `n` is a number, not a string
      run: (input): string => input.n,
    });
    // @ts-expect-error: the output schema wants `{ok: boolean}`
    defineAction({
      name: "test.typed-wrong-output",
      input: {},
      output: { type: "object", required: ["ok"], properties: { ok: { type: "boolean" } } },
      run: () => ({ ok: "yes" }),
    });
    expect(getAction("test.typed-wrong-input")).toBeDefined();
  });
});

describe("defineAction: validation", () => {
  it("runs an action whose input matches, and its output is the task's output", async () => {
    charge.mockClear();
    const result = await runAttempt(
      record("test.charge", { amount: 5, card: { number: "4242424242424242" } }),
    );
    expect(result).toEqual({ ok: true, output: { chargeId: "r1/t/-:500:EUR:4242" } });
    expect(charge).toHaveBeenCalledTimes(1);
    expect(charge.mock.calls[0]?.[1]).toMatchObject({ runId: "r1", task: "t", attempt: 1 });
  });

  it("fails the attempt with a non-retryable InvalidActionInput naming the paths; run is not called", async () => {
    charge.mockClear();
    const result = await runAttempt(
      record("test.charge", { amount: "5", currency: "GBP", card: { number: "x" }, extra: 1 }),
    );
    expect(result).toEqual({
      ok: false,
      retryable: false,
      error: {
        code: "InvalidActionInput",
        message:
          "the input of test.charge does not match its schema: input.extra is not an allowed property; " +
          'input.amount must be an integer; input.currency must be one of: "EUR", "USD" (and 1 more)',
      },
    });
    expect(charge).not.toHaveBeenCalled();
  });

  it("gives every problem with its path in the error's details", async () => {
    const error = await chargeAction.action({ amount: 0, card: {} }, context()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidActionInputError);
    expect(error).toMatchObject({
      code: "InvalidActionInput",
      retryable: false,
      details: [
        { path: "input.amount", message: "must be >= 1" },
        { path: "input.card.number", message: "is required" },
      ],
    });
  });

  it("validates a missing input as null", async () => {
    charge.mockClear();
    const result = await runAttempt(record("test.charge", undefined));
    expect(result).toMatchObject({
      ok: false,
      retryable: false,
      error: { code: "InvalidActionInput", message: expect.stringContaining(": input must be an object") },
    });
    expect(charge).not.toHaveBeenCalled();
  });

  it("fails with a non-retryable InvalidActionOutput when the return value does not match", async () => {
    const result = await runAttempt(
      record("test.charge", { amount: 13, card: { number: "4242424242424242" } }),
    );
    expect(result).toEqual({
      ok: false,
      retryable: false,
      error: {
        code: "InvalidActionOutput",
        message: "the output of test.charge does not match its schema: output.chargeId must be a string",
      },
    });
    const error = await chargeAction
      .action({ amount: 13, card: { number: "4242424242424242" } }, context())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidActionOutputError);
  });

  it("leaves errors thrown by run as they are (retryable unless an ActionError says otherwise)", async () => {
    defineAction({
      name: "test.throws",
      input: { type: "null" },
      run: () => {
        throw new Error("upstream down");
      },
    });
    expect(await runAttempt(record("test.throws", null))).toEqual({
      ok: false,
      retryable: true,
      error: { code: "Error", message: "upstream down" },
    });
  });

  it("throws at definition time on a schema that is not valid, naming the path, and registers nothing", () => {
    expect(() =>
      // @ts-expect-error: not a JSON Schema type (the types say so too)
      defineAction({
        name: "test.bad-schema",
        input: { type: "object", properties: { url: { type: "text" } } },
        run: () => null,
      }),
    ).toThrow(/^action 'test\.bad-schema': its input schema is not valid: input\.properties\.url\.type /);
    expect(() =>
      defineAction<{ a: string }>({
        name: "test.bad-output-schema",
        input: { type: "object" },
        output: { type: "object", requried: ["a"] } as object,
        run: () => null,
      }),
    ).toThrow(/^action 'test\.bad-output-schema': its output schema is not valid: .*requried/);
    expect(getAction("test.bad-schema")).toBeUndefined();
    expect(getAction("test.bad-output-schema")).toBeUndefined();
  });

  it("checks the name as registerAction does, and refuses a second action of the same name", () => {
    expect(() => defineAction({ name: "nodots", input: {}, run: () => null })).toThrow(/namespace\.name/);
    expect(() => defineAction({ name: "test.charge", input: {}, run: () => null })).toThrow(
      "action 'test.charge' is already registered",
    );
  });
});

describe("the built-in actions defined with it", () => {
  it("core.sleep: `{seconds}` (or no input), a negative or non-number refused before sleeping", async () => {
    expect(await runAttempt(record("core.sleep", { seconds: 0 }))).toEqual({
      ok: true,
      output: { slept: 0 },
    });
    expect(await runAttempt(record("core.sleep", undefined))).toEqual({ ok: true, output: { slept: 0 } });
    for (const [input, problem] of [
      [{ seconds: -1 }, "input.seconds must be >= 0"],
      [{ seconds: "soon" }, "input.seconds must be a number"],
    ] as const) {
      expect(await runAttempt(record("core.sleep", input))).toEqual({
        ok: false,
        retryable: false,
        error: {
          code: "InvalidActionInput",
          message: `the input of core.sleep does not match its schema: ${problem}`,
        },
      });
    }
  });

  it("core.http: a missing or non-http url, or headers that are not an object, fail before any request", async () => {
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    for (const [input, problem] of [
      [{}, "input.url is required"],
      [{ url: "ftp://x" }, 'input.url must match pattern "^https?://"'],
      [{ url: "http://x", headers: "x" }, "input.headers must be an object"],
    ] as const) {
      expect(await runAttempt(record("core.http", input))).toMatchObject({
        ok: false,
        retryable: false,
        error: {
          code: "InvalidActionInput",
          message: `the input of core.http does not match its schema: ${problem}`,
        },
      });
    }
    expect(fetchSpy).not.toHaveBeenCalled();
    fetchSpy.mockRestore();
  });
});

describe("registerAction", () => {
  it("keeps working: untyped input, no validation", async () => {
    registerAction("test.untyped", (input, ctx) => ({ input, attempt: ctx.attempt }));
    expect(await runAttempt(record("test.untyped", "anything"))).toEqual({
      ok: true,
      output: { input: "anything", attempt: 1 },
    });
  });
});
