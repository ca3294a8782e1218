/**
 * Typed actions: `defineAction({name, input, output?, run})` registers an action whose input is
 * checked against a JSON Schema before `run` is called, with `run`'s input type inferred from that
 * schema (json-schema-to-ts's `FromSchema`, types only) or given as a type argument.
 */
import type { FromSchema, JSONSchema } from "json-schema-to-ts";
import { checkInputSchema, compileInputSchema } from "../definition/input-schema";
import { schemaProblems, summarizeProblems } from "../definition/schema-problems";
import { InvalidActionInputError, InvalidActionOutputError } from "../errors";
import { type ActionContext, registerAction } from "./registry";

/** A JSON Schema written as an object (draft 07 keywords, checked by the same ajv as run inputs). */
export type ActionSchema = Exclude<JSONSchema, boolean>;

/**
 * The type of the values a schema accepts. Nothing fills in `default`s, so a property that has one
 * stays optional.
 */
export type SchemaType<S extends JSONSchema> = FromSchema<S, { keepDefaultedPropertiesOptional: true }>;

/** `run`'s return type: from the output schema when there is one. */
type OutputOf<O> = O extends ActionSchema ? SchemaType<O> : unknown;

export type RunFunction<Input, Output> = (input: Input, context: ActionContext) => Output | Promise<Output>;

export interface ActionDefinition<Input, Output> {
  /** `namespace.name`: what a task's `action` says. */
  name: string;
  /** The JSON Schema the input must match; `run` is not called when it does not (`InvalidActionInput`). */
  input: ActionSchema;
  /** A JSON Schema the return value must match, or the attempt fails with `InvalidActionOutput`. */
  output?: ActionSchema;
  /** The action itself: its (validated) input and the attempt's context; its return value is the task's output. */
  run: RunFunction<Input, Output>;
}

export interface DefinedAction<Input, Output> {
  readonly name: string;
  /** The function registered under `name`: validates the input, runs, validates the output. */
  readonly action: (input: unknown, context: ActionContext) => Promise<Output>;
  /** The `run` given, unwrapped. */
  readonly run: RunFunction<Input, Output>;
}

/**
 * Defines and registers an action. The schemas are compiled here, once (a schema that is not valid
 * throws, naming the problem's path); each attempt's input is validated before `run` is called, and
 * a mismatch fails the attempt with the non-retryable `InvalidActionInput`, whose message names the
 * path(s) (`input.url must be a string`). With `output`, the return value is validated too
 * (`InvalidActionOutput`, not retried). A task without `input` gives `null`.
 *
 * `run`'s input type is inferred from the `input` schema (write it inline, or `as const`), its
 * return type from `output`'s; or give both as type arguments: `defineAction<Input, Output>({...})`.
 */
export function defineAction<
  const I extends ActionSchema,
  const O extends ActionSchema | undefined = undefined,
>(definition: {
  name: string;
  input: I;
  output?: O;
  // NoInfer here and in the return type: `I` and `O` come from the schemas only (inferring them back
  // through `FromSchema`, from `run` or from where the result goes, costs millions of instantiations)
  run: RunFunction<NoInfer<SchemaType<I>>, NoInfer<OutputOf<O>>>;
}): DefinedAction<NoInfer<SchemaType<I>>, NoInfer<OutputOf<O>>>;
/** The types given as type arguments (not inferred: without them, the first signature applies). */
export function defineAction<Input = never, Output = unknown>(
  definition: [Input] extends [never]
    ? "give the input type as a type argument, or let it be inferred from the input schema"
    : ActionDefinition<NoInfer<Input>, NoInfer<Output>>,
): DefinedAction<Input, Output>;
export function defineAction(
  definition: ActionDefinition<unknown, unknown>,
): DefinedAction<unknown, unknown> {
  const { name, run } = definition;
  const validateInput = compileSchema(name, "input", definition.input);
  const validateOutput =
    definition.output === undefined ? undefined : compileSchema(name, "output", definition.output);
  const action = async (raw: unknown, context: ActionContext): Promise<unknown> => {
    const input = raw === undefined ? null : raw;
    if (!validateInput(input)) {
      const problems = schemaProblems(validateInput.errors, input, { basePath: "input" });
      throw new InvalidActionInputError(name, summarizeProblems(problems), problems);
    }
    const output = (await run(input, context)) ?? null;
    if (validateOutput && !validateOutput(output)) {
      const problems = schemaProblems(validateOutput.errors, output, { basePath: "output" });
      throw new InvalidActionOutputError(name, summarizeProblems(problems), problems);
    }
    return output;
  };
  registerAction(name, action);
  return { name, action, run };
}

function compileSchema(name: string, which: "input" | "output", schema: unknown) {
  if (schema === null || typeof schema !== "object" || Array.isArray(schema)) {
    throw new Error(`action '${name}': its ${which} schema must be a JSON Schema object`);
  }
  const problems = checkInputSchema(schema, which);
  if (problems.length > 0) {
    throw new Error(`action '${name}': its ${which} schema is not valid: ${summarizeProblems(problems)}`);
  }
  return compileInputSchema(schema);
}
