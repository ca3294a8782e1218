import { describe, expect, it } from "vitest";
import { ExpressionError } from "../../lib/errors";
import { checkTemplate, evaluateTemplate, hasExpression, isExpression } from "../../lib/expression";

const context = {
  input: { items: [1, 2, 3], name: "batch", count: 3, nested: { k: [1] }, flag: false },
  tasks: { prepare: { output: { items: ["a", "b"] } } },
  item: { id: 7 },
  index: 2,
};

async function failure(promise: Promise<unknown>): Promise<ExpressionError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ExpressionError);
  return error as ExpressionError;
}

describe("evaluateTemplate: an exact expression keeps its value's type", () => {
  it.each([
    ["{% input.count %}", 3],
    ["{% input.items %}", [1, 2, 3]],
    ["{% input.nested %}", { k: [1] }],
    ["{% input.flag %}", false],
    ["{% input.name %}", "batch"],
    ["{% tasks.prepare.output.items %}", ["a", "b"]],
    ["{% item.id %}", 7],
    ["{% index %}", 2],
    ["{% $count(input.items) * 2 %}", 6],
    ["  {%input.count%}  ", 3],
    ["{%\n  input.count\n%}", 3],
  ])("%s", async (template, expected) => {
    expect(await evaluateTemplate(template, context)).toStrictEqual(expected);
  });

  it("walks objects and arrays, leaving other values unchanged", async () => {
    const template = {
      items: "{% input.items %}",
      body: { value: "{% item %}", index: "{% index %}" },
      list: ["{% input.count %}", "plain", 4, true, null],
      number: 1.5,
      nothing: null,
    };
    expect(await evaluateTemplate(template, context)).toStrictEqual({
      items: [1, 2, 3],
      body: { value: { id: 7 }, index: 2 },
      list: [3, "plain", 4, true, null],
      number: 1.5,
      nothing: null,
    });
  });

  it("returns plain JSON: sequences are arrays, objects have the usual prototype", async () => {
    const value = (await evaluateTemplate("{% input.items.($ * 10) %}", context)) as unknown[];
    expect(value).toStrictEqual([10, 20, 30]);
    expect(Object.keys(value)).toStrictEqual(["0", "1", "2"]);
    const object = await evaluateTemplate('{% {"a": input.count} %}', context);
    expect(Object.getPrototypeOf(object)).toBe(Object.prototype);
  });

  it("does not change the template", async () => {
    const template = { a: "{% input.count %}", b: ["{% index %}"] };
    const copy = structuredClone(template);
    await evaluateTemplate(template, context);
    expect(template).toStrictEqual(copy);
  });

  it("gives the same answer to concurrent evaluations of one expression with different contexts", async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, index) => evaluateTemplate("{% index * 2 %}", { index })),
    );
    expect(results).toStrictEqual(Array.from({ length: 50 }, (_, index) => index * 2));
  });
});

describe("evaluateTemplate: interpolation", () => {
  it("puts strings as they are and other values as JSON", async () => {
    expect(
      await evaluateTemplate(
        "run {% input.name %}: n={% input.count %} items={% input.items %} o={% input.nested %} f={% input.flag %}",
        context,
      ),
    ).toBe('run batch: n=3 items=[1,2,3] o={"k":[1]} f=false');
  });

  it("writes an expression without a value as nothing", async () => {
    expect(await evaluateTemplate("a{% input.missing %}b", context)).toBe("ab");
  });

  it("interpolates two adjacent expressions", async () => {
    expect(await evaluateTemplate("{% input.count %}{% index %}", context)).toBe("32");
  });

  it("leaves strings without {% %} alone, %} on its own included", async () => {
    expect(await evaluateTemplate("100%} done {x}", context)).toBe("100%} done {x}");
  });
});

describe("evaluateTemplate: undefined results", () => {
  it("are left out of objects", async () => {
    expect(await evaluateTemplate({ a: "{% input.missing %}", b: 1 }, context)).toStrictEqual({ b: 1 });
  });

  it("are null in arrays", async () => {
    expect(await evaluateTemplate(["{% input.missing %}", 1], context)).toStrictEqual([null, 1]);
  });

  it("are null at the top", async () => {
    expect(await evaluateTemplate("{% input.missing %}", context)).toBeNull();
  });

  it("a template that is undefined is null", async () => {
    expect(await evaluateTemplate(undefined, context)).toBeNull();
  });
});

describe("evaluateTemplate: errors", () => {
  it("name the template path and JSONata's message", async () => {
    const error = await failure(
      evaluateTemplate({ url: "x", body: { value: "{% item.id + 'a' %}" } }, context, "input"),
    );
    expect(error.code).toBe("ExpressionError");
    expect(error.message).toContain("input.body.value");
    expect(error.message).toContain(`The right side of the "+" operator must evaluate to a number`);
    expect(error.message).toContain("{% item.id + 'a' %}");
    expect(error.message).toMatch(/T2002/);
  });

  it("name array indices in the path", async () => {
    const error = await failure(evaluateTemplate({ list: [1, "{% $error('boom') %}"] }, context, "output"));
    expect(error.message).toMatch(/^output\.list\[1\]: .*boom/);
  });

  it("without a base path start at the template's own keys", async () => {
    const error = await failure(evaluateTemplate({ a: { b: "{% $number('x') %}" } }, context));
    expect(error.message).toMatch(/^a\.b: /);
  });

  it("report an expression that does not compile", async () => {
    const error = await failure(evaluateTemplate({ a: "{% input. %}" }, context, "input"));
    expect(error.message).toMatch(
      /^input\.a: invalid expression \{% input\. %\}: Unexpected end of expression/,
    );
  });

  it("report an unterminated {%", async () => {
    const error = await failure(evaluateTemplate({ a: "x {% input.count" }, context));
    expect(error.message).toBe('a: "{%" has no closing "%}"');
  });

  it("refuse a function as a value", async () => {
    const error = await failure(evaluateTemplate({ f: "{% $sum %}" }, context));
    expect(error.message).toMatch(/^f: .*evaluated to a function/);
  });

  it("stop a runaway expression", async () => {
    const error = await failure(
      evaluateTemplate("{% ($loop := function($n) { $loop($n + 1) }; $loop(0)) %}", context, "input"),
    );
    expect(error.message).toMatch(/^input: expression .* failed: /);
  }, 10_000);

  it("keep the jsonata error as the cause", async () => {
    const error = await failure(evaluateTemplate("{% $error('boom') %}", context));
    expect(error.cause).toMatchObject({ code: "D3137" });
  });
});

describe("checkTemplate", () => {
  it("finds no problem in a valid template", () => {
    expect(checkTemplate({ a: "{% input.x %}", b: ["n={% index %}", 3], c: null }, "tasks.t.input")).toEqual(
      [],
    );
  });

  it("reports every expression that does not compile, with its path", () => {
    const problems = checkTemplate(
      { url: "{% input. %}", body: { list: ["ok", "a {% ) %} b"] }, good: "{% 1 %}" },
      "tasks.t.input",
    );
    expect(problems).toEqual([
      { path: "tasks.t.input.url", message: expect.stringMatching(/^invalid expression \{% input\. %\}: /) },
      {
        path: "tasks.t.input.body.list[1]",
        message: expect.stringMatching(/^invalid expression \{% \) %\}: /),
      },
    ]);
  });

  it("reports an unterminated {% and an empty expression", () => {
    expect(checkTemplate(["{% a", "{% %}"], "output")).toEqual([
      { path: "output[0]", message: '"{%" has no closing "%}"' },
      { path: "output[1]", message: expect.stringContaining("invalid expression") },
    ]);
  });

  it("quotes keys that are not plain names", () => {
    expect(checkTemplate({ "x-y.z": "{% ( %}" }, "input")).toEqual([
      { path: 'input["x-y.z"]', message: expect.any(String) },
    ]);
  });

  it("does not evaluate anything", () => {
    expect(checkTemplate("{% $error('never') %}", "output")).toEqual([]);
  });
});

describe("hasExpression and isExpression", () => {
  it.each([
    ["{% a %}", true, true],
    [" {% a %} ", true, true],
    ["x {% a %}", true, false],
    ["{% a %}{% b %}", true, false],
    ["plain", false, false],
    ["{% unterminated", true, false],
    [3, false, false],
    [null, false, false],
  ])("%j: has %s, is %s", (value, has, is) => {
    expect(hasExpression(value)).toBe(has);
    expect(isExpression(value)).toBe(is);
  });

  it("hasExpression looks inside objects and arrays", () => {
    expect(hasExpression({ a: [1, { b: "{% x %}" }] })).toBe(true);
    expect(hasExpression({ a: [1, { b: "x" }] })).toBe(false);
  });
});
