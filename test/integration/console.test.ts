/**
 * The web console (docs/console.md) in a real browser: Playwright drives the system's Chromium
 * (Debian's `chromium`, which .ci/run installs) against the local stack's API, which serves the
 * console. Runs are made through the API (one succeeded, one failed with a handled branch, a
 * 1,000-item fan-out held in progress by callbacks, one cancelled from the page) and each test
 * asserts what the page shows against what the API answers, waiting on what the page shows (no
 * sleeps). The runs list and a run page are captured as screenshots; `UPDATE_SCREENSHOTS=1`
 * writes them into docs/images (`npm run screenshots`).
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../infra/local/stack";
import type { RunView } from "../../lib/client";
import { register, waitForRun } from "../helpers/runs";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack();
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const FAN_ITEMS = 1000;
const FAN_CONCURRENCY = 10;

let browser: Browser;
/** Uncaught errors of the page's scripts: none, after each test. */
const pageErrors: string[] = [];
let page: Page;
const runs = { succeeded: "", failed: "", fan: "", cancelled: "", toCancel: "" };

/**
 * Polls what the page shows until the assertion holds: up to 20 s (vitest's default, 1 s, is too
 * short for a page polling a busy stack while the other test files run).
 */
const eventually = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 20_000, interval: 100 });

/** The console's URL of a hash route (`runs/ID`). */
const consoleUrl = (route = "") => `${stack.apiUrl}/console/#/${route}`;

async function tokensOf(runId: string, count: number): Promise<{ token: string; item?: number }[]> {
  for (;;) {
    const issued = (await stack.client.getEvents(runId)).filter((e) => e.type === "CallbackIssued");
    if (issued.length >= count)
      return issued.map((e) => ({ token: e.detail?.token as string, item: e.item }));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium package (.ci/run does)`);
  const launching = chromium.launch({ executablePath: CHROMIUM });
  await register(stack, {
    name: "c-ok",
    tasks: {
      a: { action: "core.echo", input: { n: 1 }, next: [{ do: ["b"] }] },
      b: { action: "core.echo", input: { from: "{% tasks.a.output.n %}" } },
    },
  });
  await register(stack, {
    name: "c-fail",
    tasks: {
      start: { action: "core.noop", next: [{ do: ["risky", "broken"] }] },
      risky: {
        action: "core.fail",
        input: { message: "handled" },
        next: [{ when: "failed", do: ["recover"] }],
      },
      recover: { action: "core.echo", input: { recovered: true } },
      broken: { action: "core.fail", input: { message: "not handled" }, next: [{ do: ["after"] }] },
      after: { action: "core.noop" },
    },
  });
  await register(stack, {
    name: "c-fan",
    tasks: {
      fan: {
        action: "core.callback",
        input: { n: "{% item %}" },
        withItems: `{% [1..${FAN_ITEMS}] %}`,
        concurrency: FAN_CONCURRENCY,
        toleratedFailurePercentage: 50,
        timeoutSeconds: 120,
      },
    },
  });
  await register(stack, { name: "c-wait", tasks: { w: { action: "core.callback", timeoutSeconds: 120 } } });
  runs.succeeded = (await stack.client.createRun("c-ok")).runId;
  runs.failed = (await stack.client.createRun("c-fail")).runId;
  runs.fan = (await stack.client.createRun("c-fan")).runId;
  runs.cancelled = (await stack.client.createRun("c-wait", { start: false })).runId;
  await stack.client.cancelRun(runs.cancelled);
  runs.toCancel = (await stack.client.createRun("c-wait")).runId;
  // the fan-out: 3 items succeed and 2 fail by their callbacks; 10 others then wait for theirs
  const tokens = await tokensOf(runs.fan, 5);
  await Promise.all(
    tokens
      .slice(0, 5)
      .map(({ token }, i) =>
        stack.client.completeCallback(
          token,
          i < 3 ? { output: { i } } : { error: { code: "No", message: "refused" } },
        ),
      ),
  );
  await Promise.all([
    waitForRun(stack, runs.succeeded),
    waitForRun(stack, runs.failed),
    waitForRun(
      stack,
      runs.fan,
      (r: RunView) =>
        r.tasks.fan?.items?.running === FAN_CONCURRENCY &&
        r.tasks.fan.items.succeeded === 3 &&
        r.tasks.fan.items.failed === 2,
      60_000,
    ),
    waitForRun(stack, runs.toCancel, (r: RunView) => r.tasks.w?.status === "running"),
  ]);
  browser = await launching;
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("pageerror", (error) => pageErrors.push(error.message));
}, 90_000);

afterEach(() => {
  expect(pageErrors.splice(0)).toEqual([]);
});

afterAll(async () => {
  await browser?.close();
});

async function screenshot(name: string): Promise<void> {
  const image = await page.screenshot();
  expect(image.length).toBeGreaterThan(10_000);
  if (process.env.UPDATE_SCREENSHOTS) writeFileSync(join(repoRoot, "docs", "images", name), image);
}

describe("the console's routes", () => {
  it("GET / redirects to the console, whose page and assets the API serves; bad paths get a 4xx with a code", async () => {
    const root = await fetch(`${stack.apiUrl}/`, { redirect: "manual" });
    expect(root.status).toBe(302);
    expect(new URL(root.headers.get("location") ?? "", `${stack.apiUrl}/`).pathname).toBe("/console/");
    const html = await stack.api("GET", "/console/");
    expect(html.status).toBe(200);
    expect(html.headers.get("content-type")).toContain("text/html");
    const script = /src="(app-\w+\.js)"/.exec(html.text)?.[1];
    const js = await fetch(`${stack.apiUrl}/console/${script}`, { headers: { "accept-encoding": "gzip" } });
    expect(js.status).toBe(200);
    expect(js.headers.get("cache-control")).toContain("immutable");
    const missing = await stack.api("GET", "/console/../../etc/passwd");
    expect(missing.status).toBe(404);
    expect((await stack.api("GET", "/console/nope.js")).body.error.code).toBe("AssetNotFound");
    expect((await stack.api("POST", "/console/")).body.error.code).toBe("MethodNotAllowed");
    const badItem = await stack.api("GET", `/runs/${runs.fan}/tasks/fan?item=x`);
    expect([badItem.status, badItem.body.error.code]).toEqual([400, "InvalidQuery"]);
    const noTask = await stack.api("GET", `/runs/${runs.fan}/tasks/nope`);
    expect([noTask.status, noTask.body.error.code]).toEqual([404, "TaskNotFound"]);
    expect(noTask.text).not.toContain("    at ");
  });
});

describe("the runs list", () => {
  it("shows every run newest first with its status in colour and words, and filters by status", async () => {
    await page.goto(stack.apiUrl);
    await eventually(() => page.locator("table.runs tbody tr").count()).toBe(5);
    const listed = (await stack.client.listRuns()).runs;
    const rows = page.locator("table.runs tbody tr");
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-run")))).toEqual(
      listed.map((r) => r.runId),
    );
    for (const run of listed) {
      const badge = page.locator(`tr[data-run="${run.runId}"] .badge`);
      await eventually(() => badge.textContent()).toContain(run.status);
      expect(await badge.getAttribute("class")).toContain(`s-${run.status}`);
    }
    await screenshot("console-runs.png");
    await page.selectOption("select[name=status]", "failed");
    await eventually(() => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-run")))).toEqual([
      runs.failed,
    ]);
    expect(page.url()).toContain("status=failed");
    const errorCode = listed.find((r) => r.runId === runs.failed)?.errorCode;
    expect(errorCode).toBeTruthy();
    expect(await rows.first().locator("td").last().textContent()).toBe(errorCode);
  });
});

/** Each graph node's status, as the page shows it. */
const nodeStatuses = () =>
  page
    .locator("[data-node]")
    .evaluateAll((nodes) =>
      Object.fromEntries(nodes.map((n) => [n.getAttribute("data-node"), n.getAttribute("data-status")])),
    );

describe("a run", () => {
  it("of a failed run with a handled branch: the graph's nodes and statuses, the error, the task's input and output", async () => {
    await page.goto(consoleUrl(`runs/${runs.failed}`));
    await eventually(nodeStatuses).toEqual({
      start: "succeeded",
      risky: "failed",
      recover: "succeeded",
      broken: "failed",
      after: "not started",
    });
    // the words are there as well as the colours
    expect(await page.locator('[data-node="risky"] text.status').textContent()).toContain("failed");
    expect(await page.locator("h1 .badge").textContent()).toContain("failed");
    const run = await stack.client.getRun(runs.failed);
    expect(await page.locator('[data-json="Run error"]').textContent()).toBe(
      JSON.stringify(run.error, null, 2),
    );
    await page.locator('[data-node="recover"]').click();
    const panel = page.locator('[data-selected-task="recover"]');
    await eventually(() => panel.locator('[data-json="Task output"]').textContent()).toBe(
      JSON.stringify({ recovered: true }, null, 2),
    );
    expect(await panel.locator('[data-field="attempts"]').textContent()).toBe("1");
    // the handled failure: its error, by the keyboard (Tab to a node, arrow keys along the edges, Enter)
    await page.locator('[data-node="start"]').focus();
    await page.keyboard.press("ArrowDown");
    const focused = await page.evaluate<string | null>('document.activeElement?.getAttribute("data-node")');
    expect(["risky", "broken"]).toContain(focused);
    await page.keyboard.press("Enter");
    const selected = page.locator(`[data-selected-task="${focused}"]`);
    await eventually(() => selected.locator('[data-json="Task error"]').textContent()).toContain(
      "TaskFailed",
    );
    expect(page.url()).toContain(`task=${focused}`);
  });

  it("its history as a table with time offsets, every event of the API in order", async () => {
    await page.goto(consoleUrl(`runs/${runs.succeeded}`));
    const events = await stack.client.getEvents(runs.succeeded);
    const rows = page.locator("table.events tbody tr");
    await eventually(() => rows.count()).toBe(events.length);
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-event")))).toEqual(
      events.map((e) => e.type),
    );
    // each row's time is its offset from the run's creation, to the millisecond
    const { createdAt } = await stack.client.getRun(runs.succeeded);
    const offset = (at: string) => `+${((Date.parse(at) - Date.parse(createdAt)) / 1000).toFixed(3)}s`;
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.querySelector("td")?.textContent))).toEqual(
      events.map((e) => offset(e.at)),
    );
    expect(await rows.last().locator("td").nth(1).textContent()).toBe("RunSucceeded");
  });

  it("of a 1,000-item fan-out in progress: progress counts matching GET /runs/{id}, no row per item", async () => {
    await page.goto(consoleUrl(`runs/${runs.fan}?task=fan`));
    const items = (await stack.client.getRun(runs.fan)).tasks.fan?.items;
    expect(items).toMatchObject({ total: FAN_ITEMS, succeeded: 3, failed: 2, running: FAN_CONCURRENCY });
    const counts = page.locator('[data-selected-task="fan"] .counts');
    const shown = () =>
      counts
        .locator("[data-count]")
        .evaluateAll((divs) =>
          Object.fromEntries(
            divs.map((d) => [d.getAttribute("data-count"), d.querySelector("dd")?.textContent]),
          ),
        );
    await eventually(shown).toEqual({
      succeeded: "3",
      failed: "2",
      running: String(FAN_CONCURRENCY),
      queued: (items?.queued ?? 0).toLocaleString("en"),
      total: "1,000",
    });
    expect((items?.queued ?? 0) + 15).toBe(FAN_ITEMS);
    expect(await page.locator('[data-node="fan"] text.status').textContent()).toContain("running  5/1,000");
    expect(
      await page.locator('[data-selected-task="fan"] [role=progressbar]').getAttribute("aria-valuenow"),
    ).toBe("5");
    // one item, by its index: its input (from withItems) and attempts
    await page.fill(".inspect input", "0");
    await page.click(".inspect button");
    await eventually(() => page.locator('.inspect [data-json="Task input"]').textContent()).toBe(
      JSON.stringify({ n: 1 }, null, 2),
    );
    // counts, not items: the page holds a few hundred rows at most (the history, a page at a time)
    await eventually(() => page.locator("table.events tbody tr").count()).toBeGreaterThan(0);
    expect(await page.locator("tr").count()).toBeLessThan(260);
    await screenshot("console-run.png");
  });

  it("a cancel from the page takes effect (the API then says cancelled), and a second cancel shows the 409", async () => {
    await page.goto(consoleUrl(`runs/${runs.toCancel}`));
    await eventually(() => page.locator("h1 .badge").textContent()).toContain("running");
    page.once("dialog", (dialog) => void dialog.accept());
    await page.click("text=Cancel run");
    const answer = page.locator(".answer");
    await eventually(() => answer.textContent()).toBe("Cancel: accepted, the run is cancelled");
    expect((await stack.client.getRun(runs.toCancel)).status).toBe("cancelled");
    await eventually(() => page.locator("h1 .badge").textContent()).toContain("cancelled");
    page.once("dialog", (dialog) => void dialog.accept());
    await page.click("text=Cancel run");
    await eventually(() => answer.textContent()).toContain("409 RunAlreadyEnded");
    expect(await answer.textContent()).toContain("has already ended (cancelled)");
  });

  it("fits a narrow window: nothing wider than the screen but the graph and tables, which scroll", async () => {
    await page.setViewportSize({ width: 400, height: 800 });
    try {
      await page.goto(consoleUrl(`runs/${runs.failed}?task=risky`));
      await eventually(() => page.locator("[data-node]").count()).toBe(5);
      const overflow = await page.evaluate<number>(
        "document.documentElement.scrollWidth - window.innerWidth",
      );
      expect(overflow).toBeLessThanOrEqual(0);
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });
});

describe("workflows", () => {
  it("shows a definition as YAML and starts a run from an input checked against the schema", async () => {
    await register(stack, {
      name: "c-typed",
      input: { type: "object", required: ["name"], properties: { name: { type: "string" } } },
      tasks: { greet: { action: "core.echo", input: { hi: "{% input.name %}" } } },
    });
    await page.goto(consoleUrl("workflows/c-typed"));
    await eventually(() => page.locator('[data-json="definition"]').textContent()).toContain("name: c-typed");
    const submit = page.locator(".start-run button[type=submit]");
    await page.fill("#run-input", '{"name": 3}');
    await eventually(() => page.locator(".problems").textContent()).toContain("input.name: must be string");
    expect(await submit.isDisabled()).toBe(true);
    await page.fill("#run-input", '{"name": "browser"}');
    await eventually(() => submit.isDisabled()).toBe(false);
    await submit.click();
    await eventually(() => /#\/runs\/([\w-]+)/.exec(page.url())?.[1]).toBeTruthy();
    const runId = /#\/runs\/([\w-]+)/.exec(page.url())?.[1] as string;
    const run = await waitForRun(stack, runId);
    expect(run.status).toBe("succeeded");
    const greet = await stack.client.getTask(runId, "greet");
    expect("output" in greet && greet.output).toEqual({ hi: "browser" });
    await eventually(() => page.locator("h1 .badge").textContent()).toContain("succeeded");
  });
});
