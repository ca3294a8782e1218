/**
 * The shape of a workflow definition as a JSON Schema (draft-07, checked by ajv in strict mode).
 * Unknown keys are refused everywhere so that a typo such as `nxt` is a problem, not a silent no-op.
 * What a schema cannot say (references between tasks, cycles, expressions, actions) is checked in
 * validate.ts.
 */
import type { SchemaObject } from "ajv";
import { MESSAGES_KEYWORD } from "./schema-problems";

export const WHEN_VALUES = ["succeeded", "failed", "always"] as const;
/** Task names go into DynamoDB keys and SQS deduplication ids. */
export const TASK_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_-]{0,63}$";
export const WORKFLOW_NAME_PATTERN = "^[A-Za-z0-9_-]{1,64}$";
export const MAX_TASKS = 100;
/** The worker Lambda has 150 s; a task must finish well inside it. */
export const MAX_TASK_TIMEOUT_SECONDS = 120;
export const MAX_RETRY_ATTEMPTS = 10;
/** A concurrency limit's waiting list lives on one DynamoDB item, and so do its holders. */
export const MAX_RUNNING_LIMIT = 1000;
export const DEFAULT_RETRY_INTERVAL_SECONDS = 1;
export const DEFAULT_RETRY_BACKOFF_RATE = 2;

export const workflowDefinitionSchema: SchemaObject = {
  type: "object",
  required: ["name", "tasks"],
  additionalProperties: false,
  properties: {
    name: {
      type: "string",
      pattern: WORKFLOW_NAME_PATTERN,
      [MESSAGES_KEYWORD]: {
        pattern: `must be 1 to 64 letters, digits, '_' or '-' (${WORKFLOW_NAME_PATTERN})`,
      },
    },
    description: { type: "string" },
    concurrencyKey: { type: "string", minLength: 1 },
    onConcurrencyConflict: { enum: ["queue", "reject"] },
    input: { type: "object" },
    limits: {
      type: "object",
      additionalProperties: false,
      properties: {
        maxRunning: { type: "integer", minimum: 1, maximum: MAX_RUNNING_LIMIT },
        actions: {
          type: "object",
          additionalProperties: {
            type: "object",
            required: ["maxRunning"],
            additionalProperties: false,
            properties: { maxRunning: { type: "integer", minimum: 1, maximum: MAX_RUNNING_LIMIT } },
          },
        },
      },
    },
    tasks: {
      type: "object",
      minProperties: 1,
      maxProperties: MAX_TASKS,
      [MESSAGES_KEYWORD]: {
        maxProperties: `has more than ${MAX_TASKS} tasks`,
        minProperties: "must have at least one task",
      },
      propertyNames: {
        pattern: TASK_NAME_PATTERN,
        [MESSAGES_KEYWORD]: {
          pattern: `is not a valid task name: 1 to 64 letters, digits, '_' or '-', not starting with a digit or '-' (${TASK_NAME_PATTERN})`,
        },
      },
      additionalProperties: { $ref: "#/definitions/task" },
    },
    output: {},
    timeoutSeconds: { type: "integer", minimum: 1 },
  },
  dependencies: { onConcurrencyConflict: ["concurrencyKey"] },
  definitions: {
    task: {
      type: "object",
      required: ["action"],
      additionalProperties: false,
      properties: {
        action: { type: "string", minLength: 1 },
        input: {},
        next: { type: "array", items: { $ref: "#/definitions/transition" } },
        join: { const: "all" },
        withItems: {
          type: ["string", "array"],
          [MESSAGES_KEYWORD]: { type: "must be a {% %} expression or an array" },
        },
        concurrency: { type: "integer", minimum: 1 },
        toleratedFailurePercentage: { type: "number", minimum: 0, maximum: 100 },
        retry: { $ref: "#/definitions/retry" },
        // the maximum depends on the action (core.callback waits longer): checked in validate.ts
        timeoutSeconds: { type: "integer", minimum: 1 },
        heartbeatSeconds: { type: "integer", minimum: 1 },
      },
      dependencies: {
        concurrency: ["withItems"],
        toleratedFailurePercentage: ["withItems"],
      },
    },
    transition: {
      type: "object",
      required: ["do"],
      additionalProperties: false,
      properties: {
        when: { enum: [...WHEN_VALUES] },
        do: {
          type: ["string", "array"],
          minItems: 1,
          uniqueItems: true,
          items: { type: "string" },
          [MESSAGES_KEYWORD]: { type: "must be a task name or a list of task names" },
        },
      },
    },
    retry: {
      type: "object",
      required: ["maxAttempts"],
      additionalProperties: false,
      properties: {
        maxAttempts: { type: "integer", minimum: 1, maximum: MAX_RETRY_ATTEMPTS },
        intervalSeconds: { type: "number", minimum: 0 },
        backoffRate: { type: "number", minimum: 1 },
        maxIntervalSeconds: { type: "number", minimum: 0 },
      },
    },
  },
};
