/**
 * The `onceflow` CLI (bin/onceflow.mjs) against the local API, run as a user runs it: in a child
 * process, its output read and its exit code checked. The live progress view is run in a
 * pseudo-terminal (util-linux `script`) and its output replayed into a headless terminal emulator
 * (@xterm/headless), so that the test reads the screen a user would see.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stripVTControlCharacters } from "node:util";
import xterm from "@xterm/headless";
import { beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../infra/local/stack";
import { createClient, type OnceflowClient, type RunView } from "../../lib/client";
import { useLocalStack } from "../helpers/stack";

const stack = useLocalStack();
let client: OnceflowClient;
const BIN = join(repoRoot, "bin", "onceflow.mjs");
const dir = mkdtempSync(join(tmpdir(), "onceflow-cli-"));
// biome-ignore lint/suspicious/noControlCharactersInRegex: looking for escape codes
const ESCAPE = /\x1b/;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a user of the CLI: the stack's URL, no colour forced either way. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { FORCE_COLOR: _f, NO_COLOR: _n, ...rest } = process.env;
  return { ...rest, ONCEFLOW_URL: stack.apiUrl, ...extra };
}

/** Runs `command args` (asynchronously: the stack serves the CLI from this process). */
function exec(command: string, args: string[], extraEnv: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: repoRoot,
      env: env(extraEnv),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** `onceflow ARGS`, its standard output not a terminal (CI=true: picocolors alone would colour it). */
const onceflow = (...args: string[]) => exec(process.execPath, [BIN, ...args], { CI: "true" });

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * `onceflow ARGS` in a pseudo-terminal of 120×40: the raw bytes it wrote, and the screen they leave
 * (@xterm/headless replaying them).
 */
async function inTerminal(...args: string[]): Promise<Result & { screen: string[] }> {
  const command = `stty cols 120 rows 40; exec ${[process.execPath, BIN, ...args].map(shellQuote).join(" ")}`;
  const result = await exec("script", ["-qfec", command, "/dev/null"], {
    SHELL: "/bin/sh",
    TERM: "xterm-256color",
  });
  const terminal = new xterm.Terminal({ cols: 120, rows: 40, allowProposedApi: true });
  await new Promise<void>((resolve) => terminal.write(result.stdout, resolve));
  const buffer = terminal.buffer.active;
  const screen: string[] = [];
  for (let i = 0; i < buffer.length; i++) screen.push(buffer.getLine(i)?.translateToString(true) ?? "");
  while (screen.at(-1) === "") screen.pop();
  return { ...result, screen };
}

const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

beforeAll(() => {
  client = createClient({ baseUrl: stack.apiUrl });
});

describe("onceflow CLI", () => {
  let helloRun: string;
  let failedRun: string;

  it("apply: registers YAML, says when it is unchanged, lists an invalid definition's problems by path", async () => {
    const invalid = file(
      "broken.yaml",
      "name: broken\ntasks:\n  a:\n    action: core.noop\n    next: [{ do: [nowhere] }]\n  b:\n    action: no.such\n",
    );
    const failing = file(
      "fails.yaml",
      "name: fails\ntasks:\n  boom:\n    action: core.fail\n    input: { message: kaput }\n",
    );
    const [help, first, broken, fails] = await Promise.all([
      // as a user runs it: through npm's npx and the package's bin
      exec("npx", ["--no-install", "onceflow", "--help"]),
      onceflow("apply", "examples/hello.yaml"),
      onceflow("apply", invalid),
      onceflow("apply", failing),
    ]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: onceflow");
    for (const command of [
      "apply",
      "run",
      "watch",
      "runs",
      "get",
      "events",
      "trigger",
      "cancel",
      "redrive",
      "callback",
      "workflows",
    ])
      expect(help.stdout).toMatch(new RegExp(`^  ${command} `, "m"));

    expect(first).toMatchObject({ code: 0, stdout: "hello: registered as version 1\n" });
    expect(fails.code).toBe(0);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain(`invalid ${invalid}: 2 problem(s)`);
    expect(broken.stderr).toMatch(/^ {2}tasks\.a\.next\[0\]\.do\[0\]: .*nowhere/m);
    expect(broken.stderr).toMatch(/^ {2}tasks\.b\.action: .*no\.such/m);
    expect(broken.stderr).not.toMatch(ESCAPE);

    const again = await onceflow("apply", "examples/hello.yaml");
    expect(again).toMatchObject({ code: 0, stdout: "hello: unchanged (version 1 is this definition)\n" });
  });

  it("run: to success (exit 0) in plain lines, to failure (exit 1) as JSON", async () => {
    const [ok, failed] = await Promise.all([
      onceflow(
        "run",
        "hello",
        "--input",
        "@examples/hello.input.json",
        "--key",
        "cli-1",
        "--interval",
        "100",
      ),
      onceflow("run", "fails", "--json", "--interval", "100"),
    ]);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(ok.stdout).not.toMatch(ESCAPE);
    const lines = ok.stdout.split("\n");
    expect(lines).toContain("greet: succeeded");
    expect(lines).toContain(
      "flaky: failed TaskFailed: this task always fails; the failure branch handles it",
    );
    expect(lines).toContain("summarize: succeeded");
    const done = /^run (\S+) succeeded in \d/m.exec(ok.stdout);
    expect(done).not.toBeNull();
    helloRun = done?.[1] as string;
    expect(ok.stdout).toContain('"greeting": "HELLO, ONCEFLOW!"');

    expect(failed.code).toBe(1);
    const run = JSON.parse(failed.stdout) as RunView;
    expect(run).toMatchObject({ workflow: "fails", status: "failed", tasks: { boom: { status: "failed" } } });
    expect(run.tasks.boom?.error).toMatchObject({ message: "kaput" });
    failedRun = run.runId;

    // the same key and input: the same run, not a new one
    const replay = await onceflow(
      "run",
      "hello",
      "--input",
      '{"name": "onceflow"}',
      "--key",
      "cli-1",
      "--no-wait",
    );
    expect(replay).toMatchObject({
      code: 0,
      stdout: `run ${helloRun} succeeded (an earlier run of this key)\n`,
    });
  });

  it("runs, get, events, workflows: tables, text and JSON parsed back", async () => {
    // the listing index is eventually consistent
    await expect
      .poll(async () => (await client.listRuns()).runs.map((r) => r.runId).sort())
      .toEqual([helloRun, failedRun].sort());
    const [table, failedJson, get, getJson, events, eventsJson, workflows] = await Promise.all([
      onceflow("runs"),
      onceflow("runs", "--status", "failed", "--json"),
      onceflow("get", helloRun),
      onceflow("get", helloRun, "--json"),
      onceflow("events", helloRun),
      onceflow("events", helloRun, "--json"),
      onceflow("workflows"),
    ]);
    expect(table.code).toBe(0);
    const rows = table.stdout.trimEnd().split("\n");
    expect(rows[0]).toMatch(/^RUN\s+WORKFLOW\s+VERSION\s+STATUS\s+CREATED\s+DURATION\s+ERROR$/);
    // both were created at once: either may be the newer
    const cells = rows.slice(1).map((r) => r.split(/\s+/));
    expect(cells.map((r) => r.slice(0, 4))).toEqual(
      expect.arrayContaining([
        [failedRun, "fails", "1", "failed"],
        [helloRun, "hello", "1", "succeeded"],
      ]),
    );
    expect(cells).toHaveLength(2);
    expect(rows.find((r) => r.startsWith(failedRun))).toMatch(/TaskFailed$/);
    expect(table.stdout).not.toMatch(ESCAPE);
    expect(JSON.parse(failedJson.stdout).runs.map((r: { runId: string }) => r.runId)).toEqual([failedRun]);

    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(new RegExp(`^hello v1  run ${helloRun}  ✔ succeeded`));
    expect(get.stdout).toMatch(/^ {2}✔ greet\s+succeeded$/m);
    expect(get.stdout).toMatch(/^ {2}✖ flaky\s+failed\s+TaskFailed: this task always fails/m);
    expect(JSON.parse(getJson.stdout)).toEqual(await client.getRun(helloRun));

    const eventLines = events.stdout.trimEnd().split("\n");
    expect(eventLines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} {2}RunCreated/);
    expect(eventLines.at(-1)).toMatch(/RunSucceeded/);
    expect(events.stdout).toMatch(/TaskSucceeded\s+greet {2}attempt 1/);
    const parsed = JSON.parse(eventsJson.stdout).events;
    expect(parsed).toEqual(await client.getEvents(helloRun));
    expect(parsed).toHaveLength(eventLines.length);

    expect(workflows.stdout).toMatch(/^NAME\s+VERSION\s+REGISTERED$/m);
    expect(workflows.stdout).toMatch(/^fails\s+1\s+\d{4}-/m);
    expect(workflows.stdout).toMatch(/^hello\s+1\s+\d{4}-/m);
  });

  it("trigger, cancel (a second cancel: the API's 409), watch of a cancelled run (exit 2), redrive", async () => {
    const created = await onceflow("run", "hello", "--input", '{"name": "x"}', "--no-start");
    const pending = /^run (\S+) pending$/.exec(created.stdout.trim())?.[1] as string;
    expect(pending).toBeDefined();
    const cancelled = await onceflow("cancel", pending);
    expect(cancelled).toMatchObject({ code: 0, stdout: `run ${pending} cancelled\n` });
    const [again, trigger, watch, redrive] = await Promise.all([
      onceflow("cancel", pending),
      onceflow("trigger", pending),
      onceflow("watch", pending),
      onceflow("redrive", failedRun),
    ]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(
      `error RunAlreadyEnded (HTTP 409): run ${pending} has already ended (cancelled)`,
    );
    expect(trigger.code).toBe(1);
    expect(trigger.stderr).toContain("RunAlreadyStarted");
    expect(watch.code).toBe(2);
    expect(watch.stdout).toMatch(new RegExp(`^run ${pending} cancelled in`, "m"));
    expect(redrive).toMatchObject({ code: 0, stdout: `run ${failedRun} running (redrive 1)\n` });
    const missing = await onceflow("get", "no-such-run", "--json");
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stderr).error).toMatchObject({ code: "RunNotFound", status: 404 });
  });

  it("callback completes a waiting task while events --follow prints the run's history to its end", async () => {
    await client.putWorkflow("approve", {
      name: "approve",
      tasks: { ask: { action: "core.callback" } },
      output: "{% tasks.ask.output %}",
    });
    const { runId } = await client.createRun("approve");
    let token = "";
    await expect
      .poll(async () => {
        token =
          ((await client.getEvents(runId)).find((e) => e.type === "CallbackIssued")?.detail
            ?.token as string) ?? "";
        return token;
      })
      .not.toBe("");
    const following = onceflow("events", runId, "--follow", "--json", "--interval", "200");
    const answer = await onceflow(
      "callback",
      token,
      "--body",
      `@${file("answer.json", '{"output": {"approved": true}}')}`,
    );
    expect(answer).toMatchObject({ code: 0, stdout: `ask of run ${runId}: succeeded\n` });
    const followed = await following;
    expect(followed.code).toBe(0);
    const types = followed.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line).type);
    expect(types[0]).toBe("RunCreated");
    expect(types).toContain("CallbackIssued");
    expect(types).toContain("CallbackReceived");
    expect(types.at(-1)).toBe("RunSucceeded");
  });

  it("on a terminal: a live view redrawn in place, with a progress bar and counts, then the result", async () => {
    await client.putWorkflow("fan", {
      name: "fan",
      tasks: {
        prepare: { action: "core.echo", input: { items: "{% input.items %}" }, next: [{ do: ["process"] }] },
        process: {
          action: "core.sleep",
          withItems: "{% tasks.prepare.output.items %}",
          concurrency: 3,
          input: { seconds: 0.3 },
          next: [{ do: ["done"] }],
        },
        done: { action: "core.noop" },
      },
    });
    const items = JSON.stringify({ items: Array.from({ length: 9 }, (_, i) => i) });
    const { code, stdout, screen } = await inTerminal("run", "fan", "--input", items, "--interval", "100");
    expect(code).toBe(0);
    // redrawn in place: erase-line codes, and several frames
    expect(stdout).toContain("\x1b[2K");
    const frames = stripVTControlCharacters(stdout);
    expect(frames).toMatch(
      /process\s+running\s+\[[█░]+\] [0-8]\/9 {2}\d succeeded · 0 failed · [1-3] running · \d queued/,
    );
    // what is left on the screen: one header, one line per task (not one per frame), the result
    expect(screen[0]).toMatch(/^fan v1 {2}run \S+ {2}✔ succeeded {2}\d+\.\ds$/);
    expect(screen.slice(1, 4)).toEqual([
      expect.stringMatching(/^ {2}✔ prepare\s+succeeded$/),
      expect.stringMatching(
        /^ {2}✔ process\s+succeeded\s+\[█{24}\] 9\/9 {2}9 succeeded · 0 failed · 0 running · 0 queued {2}\d+\.\ds$/,
      ),
      expect.stringMatching(/^ {2}✔ done\s+succeeded$/),
    ]);
    expect(screen[4]).toMatch(/^run \S+ succeeded in \d/);
    expect(screen.filter((line) => line.includes("process"))).toHaveLength(1);
    expect(screen.join("\n")).toContain('output: {\n  "done": null\n}');

    // the same run watched without a terminal: plain lines, no escape codes
    const runId = /run (\S+)/.exec(screen[0] as string)?.[1] as string;
    const plain = await onceflow("watch", runId);
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toMatch(ESCAPE);
    expect(plain.stdout).toContain(
      "process: succeeded [████████████████████████] 9/9  9 succeeded · 0 failed · 0 running · 0 queued",
    );
  });
});
