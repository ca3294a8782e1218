/**
 * The shape of a workflow definition as a JSON Schema (draft-07, checked by ajv in strict mode).
 * Unknown keys are refused everywhere so that a typo such as `nxt` is a problem, not a silent no-op.
 * What a schema cannot say (references between tasks, cycles, expressions, actions) is checked in
 * validate.ts.
 *
 * This is also the schema editors get: json-schema.ts writes it out (without the validator's own
 * `problemMessages`) as schema/workflow.schema.json, so every property carries a `description`.
 */
import type { SchemaObject } from "ajv";
import { DEFAULT_RETRY, DEFAULT_TIMEOUT_SECONDS } from "../engine/task-record";
import { CALLBACK_ACTION, DEFAULT_CALLBACK_TIMEOUT_SECONDS, MAX_CALLBACK_TIMEOUT_SECONDS } from "./callback";
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

/** The schema's identifier (a name, not an address to fetch it from). */
export const WORKFLOW_SCHEMA_ID = "urn:onceflow:schema:workflow";

/**
 * The built-in actions (registered by lib/actions/core.ts) as editors describe them; a test checks
 * that this list and the registered `core.*` actions are the same.
 */
export const BUILT_IN_ACTIONS: Readonly<Record<string, string>> = {
  "core.noop": "Does nothing: no input, output null.",
  "core.echo": "Output = input: shapes data with templates.",
  "core.sleep": "Input {seconds}: waits that long (aborted on timeout); output {slept}.",
  "core.fail": "Input {message}: fails with TaskFailed, never retried.",
  "core.http":
    "Input {url, method = POST, headers, body, timeoutSeconds}: one HTTP request an attempt, with " +
    "Idempotency-Key and X-Onceflow-Attempt headers; output {status, body}. Non-2xx fails the " +
    "attempt; 429, 5xx and network errors are retried.",
  [CALLBACK_ACTION]:
    "Input {notifyUrl?, headers?}: issues a task token and waits (up to timeoutSeconds) for " +
    "POST /callbacks/{token}: a body {output} is the task's output, {error: {code?, message}} fails it.",
};

const builtInList = Object.entries(BUILT_IN_ACTIONS)
  .map(([name, description]) => `- ${name}: ${description}`)
  .join("\n");

const maxRunning = (what: string) => ({
  type: "integer",
  minimum: 1,
  maximum: MAX_RUNNING_LIMIT,
  description: `At most this many ${what} running at once, across every run of the workflow (1 to ${MAX_RUNNING_LIMIT}).`,
});

export const workflowDefinitionSchema: SchemaObject = {
  $schema: "http://json-schema.org/draft-07/schema#",
  $id: WORKFLOW_SCHEMA_ID,
  title: "onceflow workflow definition",
  description:
    "A workflow: a graph of tasks, each running an action, registered with PUT /workflows/{name} as " +
    "JSON or YAML. Unknown keys are refused everywhere. The format: docs/definitions.md.",
  type: "object",
  required: ["name", "tasks"],
  additionalProperties: false,
  properties: {
    name: {
      type: "string",
      pattern: WORKFLOW_NAME_PATTERN,
      description:
        "The workflow's name: 1 to 64 letters, digits, '_' or '-'. PUT /workflows/{name} takes it " +
        "from the path when the body leaves it out, and refuses a different one.",
      [MESSAGES_KEYWORD]: {
        pattern: `must be 1 to 64 letters, digits, '_' or '-' (${WORKFLOW_NAME_PATTERN})`,
      },
    },
    description: { type: "string", description: "Free text about the workflow." },
    concurrencyKey: {
      type: "string",
      minLength: 1,
      description:
        "A template evaluated on the run input when a run is created, giving the run's key: runs of " +
        "this workflow with the same key never run at the same time (docs/concurrency.md).",
    },
    onConcurrencyConflict: {
      enum: ["queue", "reject"],
      description:
        "What a run does when its concurrencyKey is held: queue (the default) waits its turn; reject " +
        "answers 409 ConcurrencyKeyBusy and creates nothing. Needs concurrencyKey.",
    },
    input: {
      type: "object",
      description: "A JSON Schema the run input must match (else 400 InvalidInput).",
    },
    limits: {
      type: "object",
      additionalProperties: false,
      description: "Concurrency limits across every run of the workflow (docs/concurrency.md).",
      properties: {
        maxRunning: maxRunning("executions of actions without a limit of their own"),
        actions: {
          type: "object",
          description: "A limit by action name, e.g. core.http: {maxRunning: 3}.",
          additionalProperties: {
            type: "object",
            required: ["maxRunning"],
            additionalProperties: false,
            description: "The limit of one action.",
            properties: { maxRunning: maxRunning("executions of this action") },
          },
        },
      },
    },
    tasks: {
      type: "object",
      minProperties: 1,
      maxProperties: MAX_TASKS,
      description:
        `The tasks by name (1 to ${MAX_TASKS}). Names are 1 to 64 letters, digits, '_' or '-', not ` +
        "starting with a digit or '-'. Tasks no transition points at start the run.",
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
    output: {
      description:
        "A template for the run's output. Without it, the output is {TASK: output} of the succeeded " +
        "tasks that have no next.",
    },
    timeoutSeconds: {
      type: "integer",
      minimum: 1,
      description: "The whole run's deadline: past it the run fails with RunTimedOut and nothing new starts.",
    },
  },
  dependencies: { onConcurrencyConflict: ["concurrencyKey"] },
  definitions: {
    task: {
      type: "object",
      required: ["action"],
      additionalProperties: false,
      description: "A task: runs its action once (once per item with withItems), then its next transitions.",
      properties: {
        action: {
          type: "string",
          minLength: 1,
          description:
            "The action to run: a built-in one, or one registered in actions/index.ts (named " +
            `namespace.name). Built-in:\n${builtInList}`,
          examples: Object.keys(BUILT_IN_ACTIONS),
        },
        input: {
          description:
            "The action's input: any JSON, where JSONata inside {% %} is evaluated (context: input, " +
            "tasks.NAME.output/.error/.status, and item and index in a with-items task).",
        },
        next: {
          type: "array",
          items: { $ref: "#/definitions/transition" },
          description:
            "What starts after this task: transitions {when?, do}; each one whose when matches how the task ended fires.",
        },
        join: {
          const: "all",
          description:
            "all: wait for every transition into this task; without it the task starts on the first one " +
            "that fires.",
        },
        withItems: {
          type: ["string", "array"],
          description:
            "Fan out: an array, or a {% %} expression giving one; the action runs once per element " +
            "(item, index), and the task's output is the items' outputs in order (docs/with-items.md).",
          [MESSAGES_KEYWORD]: { type: "must be a {% %} expression or an array" },
        },
        concurrency: {
          type: "integer",
          minimum: 1,
          description:
            "With withItems only: at most this many items queued or running at once (default: all).",
        },
        toleratedFailurePercentage: {
          type: "number",
          minimum: 0,
          maximum: 100,
          description: "With withItems only: the percentage of items that may fail, 0 to 100 (default 0).",
        },
        retry: {
          $ref: "#/definitions/retry",
          description:
            "How retryable failures (timeouts, network errors, 429, 5xx, uncaught errors) are retried. " +
            `Without it: maxAttempts ${DEFAULT_RETRY.maxAttempts}, intervalSeconds ${DEFAULT_RETRY.intervalSeconds}, ` +
            `backoffRate ${DEFAULT_RETRY.backoffRate}.`,
        },
        // the maximum depends on the action (core.callback waits longer): checked in validate.ts
        timeoutSeconds: {
          type: "integer",
          minimum: 1,
          description:
            `Each attempt's limit: default ${DEFAULT_TIMEOUT_SECONDS}, at most ${MAX_TASK_TIMEOUT_SECONDS}; ` +
            `on expiry the attempt fails with the retryable TaskTimedOut. For ${CALLBACK_ACTION}: the wait, ` +
            `default ${DEFAULT_CALLBACK_TIMEOUT_SECONDS} (1 day), at most ${MAX_CALLBACK_TIMEOUT_SECONDS} (7 days).`,
        },
        heartbeatSeconds: {
          type: "integer",
          minimum: 1,
          description:
            `${CALLBACK_ACTION} only, at most timeoutSeconds: without a heartbeat ` +
            "(POST /callbacks/{token}/heartbeat) this often, the wait times out (docs/callbacks.md).",
        },
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
      description: "Starts the tasks in do when the task ends as when says.",
      properties: {
        when: {
          enum: [...WHEN_VALUES],
          description:
            "succeeded (the default), failed (handles the failure: the run can still succeed) or always.",
        },
        do: {
          type: ["string", "array"],
          minItems: 1,
          uniqueItems: true,
          items: { type: "string" },
          description: "The task to start, or a list of tasks to start in parallel.",
          [MESSAGES_KEYWORD]: { type: "must be a task name or a list of task names" },
        },
      },
    },
    retry: {
      type: "object",
      required: ["maxAttempts"],
      additionalProperties: false,
      description:
        "A retry policy: the delay before attempt n+1 is intervalSeconds × backoffRate^(n-1), capped by " +
        "maxIntervalSeconds, plus up to 20% jitter.",
      properties: {
        maxAttempts: {
          type: "integer",
          minimum: 1,
          maximum: MAX_RETRY_ATTEMPTS,
          description: `Attempts in all, the first included (1 to ${MAX_RETRY_ATTEMPTS}).`,
        },
        intervalSeconds: {
          type: "number",
          minimum: 0,
          description: `The delay before the second attempt (default ${DEFAULT_RETRY_INTERVAL_SECONDS}).`,
        },
        backoffRate: {
          type: "number",
          minimum: 1,
          description: `What each delay is multiplied by for the next (default ${DEFAULT_RETRY_BACKOFF_RATE}).`,
        },
        maxIntervalSeconds: {
          type: "number",
          minimum: 0,
          description: "The longest delay (at least intervalSeconds; default: no cap).",
        },
      },
    },
  },
};
