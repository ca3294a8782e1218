import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseDefinitionBody } from "../../../lib/definition/parse";
import { definitionProblems, validateDefinition } from "../../../lib/definition/validate";
import { InvalidWorkflowError, type Problem } from "../../../lib/errors";

const actions = new Set(["core.noop", "core.echo", "core.sleep", "core.fail", "core.http"]);

/** The example of DESIGN.md ("Workflow definitions"), as written there. */
const designExample = readFileSync(new URL("design-example.yaml", import.meta.url), "utf8");

/** A valid definition to break one piece at a time. */
function base(): Record<string, unknown> & { tasks: Record<string, Record<string, unknown>> } {
  return {
    name: "wf",
    tasks: {
      a: { action: "core.noop", next: [{ do: ["b"] }] },
      b: { action: "core.noop" },
    },
  };
}

function problemsOf(raw: unknown): Problem[] {
  return definitionProblems(raw, { actions });
}

function invalid(raw: unknown): InvalidWorkflowError {
  try {
    validateDefinition(raw, { actions });
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidWorkflowError);
    return error as InvalidWorkflowError;
  }
  throw new Error("expected an InvalidWorkflowError");
}

describe("validateDefinition: valid definitions", () => {
  it("accepts the DESIGN.md example", () => {
    const definition = validateDefinition(parseDefinitionBody(designExample, "application/yaml"), {
      actions,
    });
    expect(Object.keys(definition.tasks)).toEqual(["prepare", "process_items", "validate", "cleanup"]);
    expect(definition.concurrencyKey).toBe("{% input.repo %}");
    expect(definition.input).toEqual({ type: "object", required: ["items"] });
    expect(definition.tasks.process_items).toEqual({
      action: "core.http",
      input: { url: "{% input.callbackUrl %}", body: { value: "{% item %}", index: "{% index %}" } },
      next: [
        { when: "succeeded", do: ["validate"] },
        { when: "failed", do: ["cleanup"] },
      ],
      withItems: "{% tasks.prepare.output.items %}",
      concurrency: 3,
      retry: { maxAttempts: 3, intervalSeconds: 1, backoffRate: 2 },
      timeoutSeconds: 30,
    });
  });

  it("accepts the repository's example workflow", () => {
    const body = readFileSync(new URL("../../../examples/hello.yaml", import.meta.url), "utf8");
    const definition = validateDefinition(parseDefinitionBody(body, "application/yaml"), {
      actions: new Set([...actions, "example.greet"]),
    });
    expect(definition.tasks.summarize?.join).toBe("all");
  });

  it("accepts every optional field at its limits", () => {
    const raw = {
      name: "A_b-9".padEnd(64, "x"),
      description: "all the options",
      concurrencyKey: "repo-{% input.repo %}",
      input: { type: "object", properties: { items: { type: "array" } }, required: ["items"] },
      timeoutSeconds: 1,
      tasks: {
        _start: {
          action: "core.echo",
          input: null,
          withItems: [1, "{% input.x %}", { a: "{% index %}" }],
          concurrency: 1,
          toleratedFailurePercentage: 100,
          retry: { maxAttempts: 10, intervalSeconds: 0, backoffRate: 1, maxIntervalSeconds: 0 },
          timeoutSeconds: 120,
          next: [{ when: "always", do: "Z".padEnd(64, "-") }],
        },
        ["Z".padEnd(64, "-")]: { action: "core.noop", join: "all" },
      },
      output: { a: ["{% tasks._start.output %}"] },
    };
    expect(problemsOf(raw)).toEqual([]);
  });

  it("accepts 100 tasks", () => {
    const tasks = Object.fromEntries(
      Array.from({ length: 100 }, (_, i) => [`t${i}`, { action: "core.noop" }]),
    );
    expect(problemsOf({ name: "wf", tasks })).toEqual([]);
  });
});

describe("validateDefinition: normalization", () => {
  it("defaults `when` to succeeded and makes a single `do` a list", () => {
    const raw = base();
    raw.tasks.a = { action: "core.noop", next: [{ do: "b" }, { when: "failed", do: ["b"] }] };
    expect(validateDefinition(raw, { actions }).tasks.a?.next).toEqual([
      { when: "succeeded", do: ["b"] },
      { when: "failed", do: ["b"] },
    ]);
  });

  it("fills in the retry defaults", () => {
    const raw = base();
    raw.tasks.b = { action: "core.noop", retry: { maxAttempts: 2 } };
    expect(validateDefinition(raw, { actions }).tasks.b?.retry).toEqual({
      maxAttempts: 2,
      intervalSeconds: 1,
      backoffRate: 2,
    });
  });

  it("returns a copy with no undefined fields, leaving the input alone", () => {
    const raw = base();
    const copy = structuredClone(raw);
    const definition = validateDefinition(raw, { actions });
    expect(raw).toEqual(copy);
    expect(definition).toStrictEqual({
      name: "wf",
      tasks: {
        a: { action: "core.noop", next: [{ when: "succeeded", do: ["b"] }] },
        b: { action: "core.noop" },
      },
    });
    expect(definition.tasks).not.toBe(raw.tasks);
  });
});

describe("validateDefinition: every problem kind, with its path", () => {
  const cases: [string, (raw: ReturnType<typeof base>) => unknown, Problem[]][] = [
    ["a definition that is not an object", () => [], [{ path: "", message: "must be an object" }]],
    ["a missing name", (raw) => ({ tasks: raw.tasks }), [{ path: "name", message: "is required" }]],
    ["missing tasks", (raw) => ({ name: raw.name }), [{ path: "tasks", message: "is required" }]],
    [
      "no tasks",
      (raw) => ({ ...raw, tasks: {} }),
      [{ path: "tasks", message: "must have at least one task" }],
    ],
    [
      "a name with a space",
      (raw) => ({ ...raw, name: "my flow" }),
      [{ path: "name", message: expect.stringContaining("must be 1 to 64 letters, digits, '_' or '-'") }],
    ],
    [
      "a name over 64 characters",
      (raw) => ({ ...raw, name: "x".repeat(65) }),
      [{ path: "name", message: expect.stringContaining("must be 1 to 64") }],
    ],
    [
      "a name that is not a string",
      (raw) => ({ ...raw, name: 7 }),
      [{ path: "name", message: "must be a string" }],
    ],
    [
      "a description that is not a string",
      (raw) => ({ ...raw, description: ["x"] }),
      [{ path: "description", message: "must be a string" }],
    ],
    [
      "an unknown top-level key",
      (raw) => ({ ...raw, nmae: "wf" }),
      [{ path: "nmae", message: expect.stringMatching(/^is not an allowed property \(allowed: name, /) }],
    ],
    [
      "a typo in a task key",
      (raw) => {
        raw.tasks.a = { action: "core.noop", nxt: [{ do: ["b"] }] };
        return raw;
      },
      [
        {
          path: "tasks.a.nxt",
          message: expect.stringMatching(/^is not an allowed property \(allowed: action, input, next, /),
        },
      ],
    ],
    [
      "a typo in a transition key",
      (raw) => {
        raw.tasks.a = { action: "core.noop", next: [{ do: ["b"], wehn: "failed" }] };
        return raw;
      },
      [{ path: "tasks.a.next[0].wehn", message: expect.stringContaining("is not an allowed property") }],
    ],
    [
      "a missing action",
      (raw) => {
        raw.tasks.b = {};
        return raw;
      },
      [{ path: "tasks.b.action", message: "is required" }],
    ],
    [
      "an unknown action",
      (raw) => {
        raw.tasks.b = { action: "core.nope" };
        return raw;
      },
      [
        {
          path: "tasks.b.action",
          message:
            'unknown action "core.nope" (known: core.echo, core.fail, core.http, core.noop, core.sleep)',
        },
      ],
    ],
    [
      "an unknown task in a do list",
      (raw) => {
        raw.tasks.a = { action: "core.noop", next: [{ do: ["b", "c"] }] };
        return raw;
      },
      [{ path: "tasks.a.next[0].do[1]", message: 'unknown task "c"' }],
    ],
    [
      "an unknown task as a single do",
      (raw) => {
        raw.tasks.a = { action: "core.noop", next: [{ do: "b" }, { do: "c" }] };
        return raw;
      },
      [{ path: "tasks.a.next[1].do", message: 'unknown task "c"' }],
    ],
    [
      "an empty do list",
      (raw) => {
        raw.tasks.a = { action: "core.noop", next: [{ do: [] }] };
        return raw;
      },
      [{ path: "tasks.a.next[0].do", message: "must NOT have fewer than 1 items" }],
    ],
    [
      "a task twice in a do list",
      (raw) => {
        raw.tasks.a = { action: "core.noop", next: [{ do: ["b", "b"] }] };
        return raw;
      },
      [{ path: "tasks.a.next[0].do[1]", message: "repeats item 0" }],
    ],
    [
      "a do that is not a name",
      (raw) => {
        raw.tasks.a = { action: "core.noop", next: [{ do: 3 }] };
        return raw;
      },
      [{ path: "tasks.a.next[0].do", message: "must be a task name or a list of task names" }],
    ],
    [
      "a transition without do",
      (raw) => {
        raw.tasks.a = { action: "core.noop", next: [{ when: "failed" }] };
        return raw;
      },
      [{ path: "tasks.a.next[0].do", message: "is required" }],
    ],
    [
      "a bad when",
      (raw) => {
        raw.tasks.a = { action: "core.noop", next: [{ when: "success", do: ["b"] }] };
        return raw;
      },
      [{ path: "tasks.a.next[0].when", message: 'must be one of: "succeeded", "failed", "always"' }],
    ],
    [
      "a join other than all",
      (raw) => {
        raw.tasks.b = { action: "core.noop", join: "any" };
        return raw;
      },
      [{ path: "tasks.b.join", message: 'must be "all"' }],
    ],
    [
      "a two-task cycle",
      (raw) => {
        raw.tasks.b = { action: "core.noop", next: [{ do: ["c"] }] };
        raw.tasks.c = { action: "core.noop", next: [{ when: "always", do: ["b"] }] };
        return raw;
      },
      [{ path: "tasks.c.next[0].do[0]", message: "cycle: b -> c -> b" }],
    ],
    [
      "a self-loop",
      (raw) => {
        raw.tasks.b = { action: "core.noop", next: [{ when: "failed", do: "b" }] };
        return raw;
      },
      [{ path: "tasks.b.next[0].do", message: 'task "b" points at itself (cycle: b -> b)' }],
    ],
    [
      "no start task",
      (raw) => {
        raw.tasks.b = { action: "core.noop", next: [{ do: ["a"] }] };
        return raw;
      },
      [
        { path: "tasks.b.next[0].do[0]", message: "cycle: a -> b -> a" },
        { path: "tasks", message: "has no start task: every task is the target of a next transition" },
      ],
    ],
    [
      "a bad expression in a task input",
      (raw) => {
        raw.tasks.b = { action: "core.http", input: { url: "{% input. %}", body: ["{% ok %}", "x{% ( %}"] } };
        return raw;
      },
      [
        {
          path: "tasks.b.input.url",
          message: expect.stringMatching(/^invalid expression \{% input\. %\}: /),
        },
        { path: "tasks.b.input.body[1]", message: expect.stringMatching(/^invalid expression \{% \( %\}: /) },
      ],
    ],
    [
      "a bad expression in withItems",
      (raw) => {
        raw.tasks.b = { action: "core.noop", withItems: "{% tasks.a.output[ %}" };
        return raw;
      },
      [{ path: "tasks.b.withItems", message: expect.stringMatching(/^invalid expression /) }],
    ],
    [
      "a bad expression inside a withItems list",
      (raw) => {
        raw.tasks.b = { action: "core.noop", withItems: [1, "{% ) %}"] };
        return raw;
      },
      [{ path: "tasks.b.withItems[1]", message: expect.stringMatching(/^invalid expression /) }],
    ],
    [
      "a bad expression in the output",
      (raw) => ({ ...raw, output: { result: "{% tasks.b.output + %}" } }),
      [{ path: "output.result", message: expect.stringMatching(/^invalid expression /) }],
    ],
    [
      "a bad expression in the concurrency key",
      (raw) => ({ ...raw, concurrencyKey: "repo-{% input.repo %" }),
      [{ path: "concurrencyKey", message: '"{%" has no closing "%}"' }],
    ],
    [
      "an empty concurrency key",
      (raw) => ({ ...raw, concurrencyKey: "" }),
      [{ path: "concurrencyKey", message: "must NOT have fewer than 1 characters" }],
    ],
    [
      "onConcurrencyConflict without a concurrency key",
      (raw) => {
        delete raw.concurrencyKey;
        return { ...raw, onConcurrencyConflict: "reject" };
      },
      [{ path: "onConcurrencyConflict", message: "is only allowed with concurrencyKey" }],
    ],
    [
      "an unknown onConcurrencyConflict",
      (raw) => ({ ...raw, concurrencyKey: "{% input.repo %}", onConcurrencyConflict: "wait" }),
      [{ path: "onConcurrencyConflict", message: 'must be one of: "queue", "reject"' }],
    ],
    [
      "withItems that is a plain string",
      (raw) => {
        raw.tasks.b = { action: "core.noop", withItems: "items" };
        return raw;
      },
      [{ path: "tasks.b.withItems", message: "must be a {% %} expression or an array" }],
    ],
    [
      "withItems that is an object",
      (raw) => {
        raw.tasks.b = { action: "core.noop", withItems: { a: 1 } };
        return raw;
      },
      [{ path: "tasks.b.withItems", message: "must be a {% %} expression or an array" }],
    ],
    [
      "concurrency without withItems",
      (raw) => {
        raw.tasks.b = { action: "core.noop", concurrency: 2 };
        return raw;
      },
      [{ path: "tasks.b.concurrency", message: "is only allowed with withItems" }],
    ],
    [
      "concurrency 0",
      (raw) => {
        raw.tasks.b = { action: "core.noop", withItems: [1], concurrency: 0 };
        return raw;
      },
      [{ path: "tasks.b.concurrency", message: "must be >= 1" }],
    ],
    [
      "a fractional concurrency",
      (raw) => {
        raw.tasks.b = { action: "core.noop", withItems: [1], concurrency: 1.5 };
        return raw;
      },
      [{ path: "tasks.b.concurrency", message: "must be an integer" }],
    ],
    [
      "toleratedFailurePercentage without withItems",
      (raw) => {
        raw.tasks.b = { action: "core.noop", toleratedFailurePercentage: 10 };
        return raw;
      },
      [{ path: "tasks.b.toleratedFailurePercentage", message: "is only allowed with withItems" }],
    ],
    [
      "toleratedFailurePercentage over 100",
      (raw) => {
        raw.tasks.b = { action: "core.noop", withItems: [1], toleratedFailurePercentage: 100.5 };
        return raw;
      },
      [{ path: "tasks.b.toleratedFailurePercentage", message: "must be <= 100" }],
    ],
    [
      "toleratedFailurePercentage under 0",
      (raw) => {
        raw.tasks.b = { action: "core.noop", withItems: [1], toleratedFailurePercentage: -1 };
        return raw;
      },
      [{ path: "tasks.b.toleratedFailurePercentage", message: "must be >= 0" }],
    ],
    [
      "a task timeout of 0",
      (raw) => {
        raw.tasks.b = { action: "core.noop", timeoutSeconds: 0 };
        return raw;
      },
      [{ path: "tasks.b.timeoutSeconds", message: "must be >= 1" }],
    ],
    [
      "a task timeout over 120 s",
      (raw) => {
        raw.tasks.b = { action: "core.noop", timeoutSeconds: 121 };
        return raw;
      },
      [
        {
          path: "tasks.b.timeoutSeconds",
          message: "must be <= 120 (only core.callback tasks may wait longer, up to 604800)",
        },
      ],
    ],
    [
      "a fractional task timeout",
      (raw) => {
        raw.tasks.b = { action: "core.noop", timeoutSeconds: 2.5 };
        return raw;
      },
      [{ path: "tasks.b.timeoutSeconds", message: "must be an integer" }],
    ],
    [
      "a run timeout of 0",
      (raw) => ({ ...raw, timeoutSeconds: 0 }),
      [{ path: "timeoutSeconds", message: "must be >= 1" }],
    ],
    [
      "a run timeout as a string",
      (raw) => ({ ...raw, timeoutSeconds: "60" }),
      [{ path: "timeoutSeconds", message: "must be an integer" }],
    ],
    [
      "retry without maxAttempts",
      (raw) => {
        raw.tasks.b = { action: "core.noop", retry: { intervalSeconds: 1 } };
        return raw;
      },
      [{ path: "tasks.b.retry.maxAttempts", message: "is required" }],
    ],
    [
      "retry maxAttempts 0 and 11",
      (raw) => {
        raw.tasks.a = { action: "core.noop", retry: { maxAttempts: 0 }, next: [{ do: "b" }] };
        raw.tasks.b = { action: "core.noop", retry: { maxAttempts: 11 } };
        return raw;
      },
      [
        { path: "tasks.a.retry.maxAttempts", message: "must be >= 1" },
        { path: "tasks.b.retry.maxAttempts", message: "must be <= 10" },
      ],
    ],
    [
      "a negative retry interval",
      (raw) => {
        raw.tasks.b = { action: "core.noop", retry: { maxAttempts: 2, intervalSeconds: -1 } };
        return raw;
      },
      [{ path: "tasks.b.retry.intervalSeconds", message: "must be >= 0" }],
    ],
    [
      "a backoff rate under 1",
      (raw) => {
        raw.tasks.b = { action: "core.noop", retry: { maxAttempts: 2, backoffRate: 0.5 } };
        return raw;
      },
      [{ path: "tasks.b.retry.backoffRate", message: "must be >= 1" }],
    ],
    [
      "a max interval under the interval",
      (raw) => {
        raw.tasks.b = {
          action: "core.noop",
          retry: { maxAttempts: 2, intervalSeconds: 5, maxIntervalSeconds: 2 },
        };
        return raw;
      },
      [{ path: "tasks.b.retry.maxIntervalSeconds", message: "must be >= intervalSeconds (5)" }],
    ],
    [
      "a max interval under the default interval",
      (raw) => {
        raw.tasks.b = { action: "core.noop", retry: { maxAttempts: 2, maxIntervalSeconds: 0.5 } };
        return raw;
      },
      [{ path: "tasks.b.retry.maxIntervalSeconds", message: "must be >= intervalSeconds (1)" }],
    ],
    [
      "an unknown retry key",
      (raw) => {
        raw.tasks.b = { action: "core.noop", retry: { maxAttempts: 2, backoff: 2 } };
        return raw;
      },
      [{ path: "tasks.b.retry.backoff", message: expect.stringContaining("is not an allowed property") }],
    ],
    [
      "a task name starting with a digit",
      (raw) => {
        raw.tasks["1st"] = { action: "core.noop" };
        return raw;
      },
      [{ path: 'tasks["1st"]', message: expect.stringContaining("is not a valid task name") }],
    ],
    [
      "a task name with a dot",
      (raw) => {
        raw.tasks["a.b"] = { action: "core.noop" };
        return raw;
      },
      [{ path: 'tasks["a.b"]', message: expect.stringContaining("is not a valid task name") }],
    ],
    [
      "a task name over 64 characters",
      (raw) => {
        raw.tasks["t".repeat(65)] = { action: "core.noop" };
        return raw;
      },
      [{ path: `tasks.${"t".repeat(65)}`, message: expect.stringContaining("is not a valid task name") }],
    ],
    [
      "a task name that is a property of every JavaScript object",
      (raw) => ({ ...raw, tasks: { ...raw.tasks, constructor: { action: "core.noop" } } }),
      [{ path: "tasks.constructor", message: "is a reserved name (a property of JavaScript objects)" }],
    ],
    [
      "more than 100 tasks",
      (raw) => ({
        ...raw,
        tasks: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`t${i}`, { action: "core.noop" }])),
      }),
      [{ path: "tasks", message: "has more than 100 tasks" }],
    ],
    [
      "an input schema that is not an object",
      (raw) => ({ ...raw, input: "object" }),
      [{ path: "input", message: "must be an object" }],
    ],
    [
      "an input schema with a bad type",
      (raw) => ({ ...raw, input: { type: "objet" } }),
      [
        {
          path: "input.type",
          message: expect.stringMatching(/^is not valid in a JSON Schema: must be one of: /),
        },
      ],
    ],
    [
      "an input schema with a misspelt keyword",
      (raw) => ({ ...raw, input: { type: "object", requried: ["items"] } }),
      [{ path: "input", message: 'is not a valid JSON Schema: strict mode: unknown keyword: "requried"' }],
    ],
    [
      "an input schema with an unresolvable $ref",
      (raw) => ({ ...raw, input: { $ref: "#/definitions/missing" } }),
      [
        {
          path: "input",
          message: expect.stringContaining("is not a valid JSON Schema: can't resolve reference"),
        },
      ],
    ],
  ];

  it.each(cases)("%s", (_name, change, expected) => {
    const error = invalid(change(base()));
    expect(error.code).toBe("InvalidWorkflow");
    expect(error.problems).toEqual(expected);
    expect(error.details).toEqual(error.problems);
  });
});

describe("validateDefinition: several problems at once", () => {
  it("reports every problem, structural and semantic together", () => {
    const raw = {
      name: "bad name",
      nme: "typo",
      input: { type: "object", requried: [] },
      concurrencyKey: "{% input. %}",
      tasks: {
        a: {
          action: "core.nope",
          nxt: [],
          input: { url: "{% ) %}" },
          next: [{ when: "done", do: ["b", "ghost"] }],
          retry: { maxAttempts: 20 },
          timeoutSeconds: 500,
          concurrency: 2,
        },
        b: { action: "core.noop", withItems: "items", next: [{ do: "a" }] },
        "9lives": { action: "core.noop", join: "any" },
      },
      output: ["{% ( %}"],
    };
    const problems = invalid(raw).problems;
    const paths = problems.map((problem) => problem.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "name",
        "nme",
        "input",
        "concurrencyKey",
        "tasks.a.action",
        "tasks.a.nxt",
        "tasks.a.input.url",
        "tasks.a.next[0].when",
        "tasks.a.next[0].do[1]",
        "tasks.a.retry.maxAttempts",
        "tasks.a.timeoutSeconds",
        "tasks.a.concurrency",
        "tasks.b.withItems",
        "tasks.b.next[0].do",
        'tasks["9lives"]',
        'tasks["9lives"].join',
        "output[0]",
      ]),
    );
    expect(problems).toContainEqual({ path: "tasks.b.next[0].do", message: "cycle: a -> b -> a" });
    expect(problems).toHaveLength(17);
  });

  it("reports each separate cycle", () => {
    const raw = {
      name: "wf",
      tasks: {
        start: { action: "core.noop", next: [{ do: ["a", "c"] }] },
        a: { action: "core.noop", next: [{ do: "b" }] },
        b: { action: "core.noop", next: [{ do: "a" }] },
        c: { action: "core.noop", next: [{ do: "d" }] },
        d: { action: "core.noop", next: [{ do: "c" }] },
      },
    };
    expect(invalid(raw).problems).toEqual([
      { path: "tasks.b.next[0].do", message: "cycle: a -> b -> a" },
      { path: "tasks.d.next[0].do", message: "cycle: c -> d -> c" },
    ]);
  });

  it("says how many problems in its message", () => {
    expect(invalid({ name: 1, tasks: 2 }).message).toBe("workflow definition has 2 problem(s)");
  });
});

describe("validateDefinition: callback tasks (timeoutSeconds by action, heartbeatSeconds)", () => {
  const withCallback = new Set([...actions, "core.callback"]);
  const task = (spec: Record<string, unknown>) => ({ name: "wf", tasks: { a: spec } });
  const problems = (raw: unknown) => definitionProblems(raw, { actions: withCallback });

  it("lets core.callback wait up to 7 days, with heartbeats up to its timeout", () => {
    const spec = { action: "core.callback", timeoutSeconds: 604_800, heartbeatSeconds: 3600 };
    expect(problems(task(spec))).toEqual([]);
    expect(validateDefinition(task(spec), { actions: withCallback }).tasks.a).toEqual(spec);
    expect(problems(task({ action: "core.callback", heartbeatSeconds: 86_400 }))).toEqual([]); // default 1 day
  });

  it("refuses a callback timeout over 7 days, and a heartbeat longer than the timeout", () => {
    expect(problems(task({ action: "core.callback", timeoutSeconds: 604_801 }))).toEqual([
      { path: "tasks.a.timeoutSeconds", message: "must be <= 604800 (7 days) for core.callback" },
    ]);
    expect(problems(task({ action: "core.callback", timeoutSeconds: 60, heartbeatSeconds: 61 }))).toEqual([
      { path: "tasks.a.heartbeatSeconds", message: "must be <= timeoutSeconds (60)" },
    ]);
    expect(problems(task({ action: "core.callback", heartbeatSeconds: 86_401 }))).toEqual([
      { path: "tasks.a.heartbeatSeconds", message: "must be <= timeoutSeconds (86400)" },
    ]);
    expect(problems(task({ action: "core.callback", heartbeatSeconds: 0 }))).toEqual([
      { path: "tasks.a.heartbeatSeconds", message: "must be >= 1" },
    ]);
  });

  it("keeps other actions at 120 s and refuses heartbeatSeconds on them", () => {
    expect(problems(task({ action: "core.http", timeoutSeconds: 3600, heartbeatSeconds: 10 }))).toEqual([
      {
        path: "tasks.a.timeoutSeconds",
        message: "must be <= 120 (only core.callback tasks may wait longer, up to 604800)",
      },
      { path: "tasks.a.heartbeatSeconds", message: "is only allowed on core.callback tasks" },
    ]);
  });
});
