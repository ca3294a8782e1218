/**
 * The JSON Schema a workflow may give for its run input: checked when the workflow is registered,
 * applied to every run's input. Compiled validators are kept by the schema's content hash.
 */
import Ajv, { type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { InvalidInputError, type Problem } from "../errors";
import { contentHash } from "./hash";
import { schemaProblems, summarizeProblems } from "./schema-problems";

const ajv = new Ajv({
  allErrors: true,
  // Unknown keywords are refused (a typo such as `requried` would silently check nothing); the
  // stricter rules about types and `required` would refuse ordinary schemas such as
  // `{type: object, required: [items]}`, so they are off.
  strictSchema: true,
  strictNumbers: true,
  strictTypes: false,
  strictTuples: false,
  strictRequired: false,
  // Schemas with an `$id` are not kept in the instance: two workflows may use the same `$id`.
  addUsedSchema: false,
});
addFormats(ajv);

const CACHE_LIMIT = 500;
const SHOWN_PROBLEMS = 3;
const validators = new Map<string, ValidateFunction>();

/** Compiles (or finds in the cache) the validator of a schema; throws ajv's error when it does not compile. */
export function compileInputSchema(schema: object): ValidateFunction {
  const key = contentHash(schema);
  const cached = validators.get(key);
  if (cached) return cached;
  const validator = ajv.compile(schema);
  if (validators.size >= CACHE_LIMIT) {
    const oldest = validators.keys().next();
    if (!oldest.done) validators.delete(oldest.value);
  }
  validators.set(key, validator);
  return validator;
}

/** Every problem of the schema itself (against the JSON Schema meta-schema, then compiling it). */
export function checkInputSchema(schema: object, basePath = "input"): Problem[] {
  try {
    if (!ajv.validateSchema(schema)) {
      // The meta-schema's anyOf branches each add an error; the first one at a path says the most.
      const firstByPath = new Map<string, Problem>();
      for (const problem of schemaProblems(ajv.errors, schema, { basePath })) {
        if (!firstByPath.has(problem.path)) firstByPath.set(problem.path, problem);
      }
      return [...firstByPath.values()].map((problem) => ({
        ...problem,
        message: `is not valid in a JSON Schema: ${problem.message}`,
      }));
    }
    compileInputSchema(schema);
    return [];
  } catch (error) {
    return [{ path: basePath, message: `is not a valid JSON Schema: ${(error as Error).message}` }];
  }
}

/** Throws `InvalidInputError` with every problem (paths start at `input`) when the input does not match. */
export function validateRunInput(schema: object | undefined, input: unknown): void {
  if (schema === undefined) return;
  const validate = compileInputSchema(schema);
  if (validate(input)) return;
  const problems = schemaProblems(validate.errors, input, { basePath: "input" });
  throw new InvalidInputError(
    `the run input does not match the workflow's input schema: ${summarizeProblems(problems, SHOWN_PROBLEMS)}`,
    problems,
  );
}
