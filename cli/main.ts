/**
 * `onceflow`: the command line of onceflow's HTTP API (docs/cli.md), on the typed client
 * (lib/client). Run as `npx onceflow` (bin/onceflow.mjs).
 */
import { readFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import {
  createClient,
  isOnceflowError,
  type OnceflowClient,
  OnceflowError,
  RUN_STATUSES,
  type RunEvent,
  type RunView,
  type SignHook,
} from "../lib/client";
import { exitCodeOf, type Mode, watchRun } from "./progress";
import {
  colorsFor,
  duration,
  errorText,
  eventLine,
  runElapsed,
  runHeader,
  statusCell,
  table,
  taskLines,
  when,
} from "./render";

const DEFAULT_URL = "http://127.0.0.1:3000";

interface GlobalOptions {
  url?: string;
  iam?: boolean;
  region?: string;
  json?: boolean;
}

const out = (text: string) => process.stdout.write(`${text}\n`);
const printJson = (value: unknown) => out(JSON.stringify(value, null, 2));

/** The client for the global options and the environment (ONCEFLOW_URL, ONCEFLOW_AUTH, ONCEFLOW_TOKEN). */
async function clientFor(options: GlobalOptions): Promise<OnceflowClient> {
  const baseUrl = options.url ?? process.env.ONCEFLOW_URL ?? DEFAULT_URL;
  const token = process.env.ONCEFLOW_TOKEN || undefined;
  let sign: SignHook | undefined;
  if (options.iam || process.env.ONCEFLOW_AUTH === "iam") {
    // loaded only for IAM: the AWS SDK's credential chain takes a moment to load
    const [{ sigV4Signer, regionOfUrl }, { defaultProvider }] = await Promise.all([
      import("../lib/client/sigv4"),
      import("@aws-sdk/credential-provider-node"),
    ]);
    const region =
      options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? regionOfUrl(baseUrl);
    if (!region) throw new UsageError("--iam needs a region: --region, AWS_REGION, or an execute-api URL");
    sign = sigV4Signer({ region, credentials: defaultProvider() });
  }
  return createClient({ baseUrl, token, sign });
}

class UsageError extends Error {}

/** YAML, loaded when needed (the module takes a moment to load). */
async function yamlParse(text: string): Promise<unknown> {
  return (await import("yaml")).parse(text);
}

/** `--input`/`--body`: JSON text, `@file` (JSON, or YAML for .yaml/.yml), or `@-` (standard input). */
async function readValue(option: string, text: string): Promise<{ value: unknown; fromFile: boolean }> {
  if (!text.startsWith("@")) {
    try {
      return { value: JSON.parse(text), fromFile: false };
    } catch (error) {
      throw new UsageError(`${option} is not JSON (${(error as Error).message}); give a file as @path`);
    }
  }
  const path = text.slice(1);
  let content: string;
  try {
    content = readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (error) {
    throw new UsageError(`${option}: cannot read ${path}: ${(error as Error).message}`);
  }
  return { value: await parseFile(option, path, content), fromFile: true };
}

async function parseFile(what: string, path: string, content: string): Promise<unknown> {
  try {
    if ([".yaml", ".yml"].includes(extname(path).toLowerCase())) return await yamlParse(content);
    return JSON.parse(content);
  } catch (error) {
    throw new UsageError(
      `${what}: ${path} is not valid ${extname(path) || "JSON"}: ${(error as Error).message}`,
    );
  }
}

function positiveInt(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a whole number of at least 1");
  return n;
}

function seconds(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("must be a number of seconds");
  return n;
}

/** How `run` and `watch` show progress: JSON when asked, live on a terminal, plain lines elsewhere. */
const modeFor = (options: GlobalOptions): Mode =>
  options.json ? "json" : process.stdout.isTTY ? "tty" : "plain";

/** Prints an error the way a person reads it (or as JSON), and gives exit code 1. */
function report(error: unknown, json: boolean): number {
  if (error instanceof UsageError) {
    process.stderr.write(`onceflow: ${error.message}\n`);
    return 1;
  }
  if (error instanceof OnceflowError) {
    if (json) {
      process.stderr.write(
        `${JSON.stringify({ error: { code: error.code, status: error.status, message: error.message, details: error.details, ...error.fields } })}\n`,
      );
      return 1;
    }
    const c = colorsFor(process.stderr);
    const lines = [
      `${c.red("error")} ${error.code}${error.status ? ` (HTTP ${error.status})` : ""}: ${error.message}`,
    ];
    for (const p of error.problems) lines.push(`  ${c.bold(p.path || "(the definition)")}: ${p.message}`);
    if (error.code === "NetworkError")
      lines.push("  Is the API running (`npm start`)? Its URL comes from --url or ONCEFLOW_URL.");
    process.stderr.write(`${lines.join("\n")}\n`);
    return 1;
  }
  process.stderr.write(`onceflow: ${(error as Error)?.stack ?? String(error)}\n`);
  return 1;
}

type Handler = (
  client: OnceflowClient,
  options: GlobalOptions,
  ...args: never[]
) => Promise<number | undefined>;

/** Runs a command's handler with the client, turning errors into messages and exit codes. */
function action(handler: Handler) {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const options = command.optsWithGlobals() as GlobalOptions & Record<string, unknown>;
    try {
      const client = await clientFor(options);
      const code = await (handler as (...a: unknown[]) => Promise<number | undefined>)(
        client,
        options,
        ...args.slice(0, -1),
      );
      process.exitCode = code ?? 0;
    } catch (error) {
      process.exitCode = report(error, Boolean(options.json));
    }
  };
}

export function program(): Command {
  const p = new Command("onceflow")
    .description("onceflow's command line: register workflows, run them and watch them, over the HTTP API")
    .addOption(new Option("--url <url>", `the API's URL (env ONCEFLOW_URL; default ${DEFAULT_URL})`))
    .option("--iam", "sign requests with SigV4 and the AWS default credential chain (env ONCEFLOW_AUTH=iam)")
    .option("--region <region>", "the API's region, for --iam (default: AWS_REGION, or the URL's)")
    .option("--json", "print JSON (no colours, no live view)")
    .addHelpText(
      "after",
      "\nEnvironment: ONCEFLOW_URL, ONCEFLOW_AUTH=iam, ONCEFLOW_TOKEN (sent as a bearer token).\n" +
        "Exit codes of run and watch: 0 succeeded, 1 failed (or an error), 2 cancelled or timed out.\n" +
        "Docs: docs/cli.md",
    )
    .showHelpAfterError("(onceflow --help for usage)");

  p.command("apply")
    .argument("<file>", "a definition, YAML or JSON")
    .option("--name <name>", "the workflow's name (default: the definition's `name`, else the file's name)")
    .description("register a definition as its workflow's next version (PUT /workflows/{name})")
    .action(
      action(async (client, options, file: string, opts: { name?: string }) => {
        let text: string;
        try {
          text = readFileSync(file, "utf8");
        } catch (error) {
          throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
        }
        let parsed: unknown;
        try {
          parsed = await yamlParse(text);
        } catch {
          parsed = undefined; // the API says what is wrong with it
        }
        const named = (parsed as { name?: unknown } | null)?.name;
        const name = opts.name ?? (typeof named === "string" ? named : basename(file, extname(file)));
        try {
          const registered = await client.putWorkflow(name, text);
          if (options.json) printJson(registered);
          else
            out(
              registered.created
                ? `${name}: registered as version ${registered.version}`
                : `${name}: unchanged (version ${registered.version} is this definition)`,
            );
          return 0;
        } catch (error) {
          if (isOnceflowError(error, "InvalidWorkflow") && !options.json) {
            const c = colorsFor(process.stderr);
            const lines = [`${c.red("invalid")} ${file}: ${error.problems.length} problem(s)`];
            for (const problem of error.problems)
              lines.push(`  ${c.bold(problem.path || "(the definition)")}: ${problem.message}`);
            process.stderr.write(`${lines.join("\n")}\n`);
            return 1;
          }
          throw error;
        }
      }),
    );

  p.command("run")
    .argument("<workflow>", "the workflow's name")
    .option("--input <json>", "the run's input: JSON, @file (JSON or YAML) or @- (standard input)")
    .option("--key <key>", "an Idempotency-Key: the same key and input again give the same run")
    .option("--no-wait", "print the run's id and return at once")
    .option("--no-start", "create the run pending, for a later `onceflow trigger` (implies --no-wait)")
    .option("--timeout <seconds>", "stop waiting after this long (exit code 2; the run goes on)", seconds)
    .option("--interval <ms>", "between two polls", positiveInt, 250)
    .description("create a run of the workflow's latest version and follow it to its end")
    .action(
      action(
        async (
          client,
          options,
          workflow: string,
          opts: {
            input?: string;
            key?: string;
            wait: boolean;
            start: boolean;
            timeout?: number;
            interval: number;
          },
        ) => {
          let input: unknown;
          if (opts.input !== undefined) {
            const { value, fromFile } = await readValue("--input", opts.input);
            // a file holding a request body (`{"input": ...}`, like examples/hello.input.json) gives its input
            const body =
              fromFile && value && typeof value === "object" && !Array.isArray(value)
                ? Object.keys(value)
                : [];
            input = body.length === 1 && body[0] === "input" ? (value as { input: unknown }).input : value;
          }
          const created = await client.createRun(workflow, {
            input,
            idempotencyKey: opts.key,
            ...(opts.start ? {} : { start: false }),
          });
          if (!opts.wait || !opts.start) {
            if (options.json) printJson(created);
            else
              out(
                `run ${created.runId} ${created.status}${created.created ? "" : " (an earlier run of this key)"}`,
              );
            return 0;
          }
          const mode = modeFor(options);
          if (mode !== "json" && !created.created) out(`run ${created.runId}: an earlier run of this key`);
          return watchRun(client, created.runId, {
            mode,
            intervalMs: opts.interval,
            timeoutMs: (opts.timeout ?? 0) * 1000,
            showResult: true,
          });
        },
      ),
    );

  p.command("watch")
    .argument("<run>", "a run id")
    .option("--timeout <seconds>", "stop waiting after this long (exit code 2; the run goes on)", seconds)
    .option("--interval <ms>", "between two polls", positiveInt, 250)
    .description("follow a run to its end, live on a terminal; the exit code says how it ended")
    .action(
      action(async (client, options, runId: string, opts: { timeout?: number; interval: number }) =>
        watchRun(client, runId, {
          mode: modeFor(options),
          intervalMs: opts.interval,
          timeoutMs: (opts.timeout ?? 0) * 1000,
          showResult: true,
        }),
      ),
    );

  p.command("runs")
    .option("--workflow <name>", "only this workflow's runs")
    .addOption(new Option("--status <status>", "only runs with this status").choices(RUN_STATUSES))
    .option("--limit <n>", "at most this many (a page: 1 to 100)", positiveInt, 20)
    .option("--cursor <cursor>", "the page after the one that printed this cursor")
    .option("--all", "every matching run, page after page (--limit is the page size)")
    .description("list runs, newest first (GET /runs)")
    .action(
      action(
        async (
          client,
          options,
          opts: {
            workflow?: string;
            status?: RunView["status"];
            limit: number;
            cursor?: string;
            all?: boolean;
          },
        ) => {
          const query = { workflow: opts.workflow, status: opts.status, limit: opts.limit };
          let runs: Awaited<ReturnType<OnceflowClient["listRuns"]>>["runs"] = [];
          let nextCursor: string | undefined;
          if (opts.all) for await (const run of client.iterateRuns(query)) runs.push(run);
          else ({ runs, nextCursor } = await client.listRuns({ ...query, cursor: opts.cursor }));
          if (options.json) {
            printJson({ runs, ...(nextCursor ? { nextCursor } : {}) });
            return 0;
          }
          const c = colorsFor(process.stdout);
          if (runs.length === 0) out(c.dim("no runs"));
          else
            out(
              table(
                c,
                ["RUN", "WORKFLOW", "VERSION", "STATUS", "CREATED", "DURATION", "ERROR"],
                runs.map((r) => [
                  r.runId,
                  r.workflow,
                  String(r.version),
                  statusCell(c, r.status),
                  when(r.createdAt),
                  r.startedAt
                    ? duration(runElapsed({ ...r, startedAt: r.startedAt, endedAt: r.endedAt ?? null }))
                    : "",
                  r.errorCode ?? "",
                ]),
              ),
            );
          if (nextCursor) {
            const filters = [
              ...(opts.workflow ? [`--workflow ${opts.workflow}`] : []),
              ...(opts.status ? [`--status ${opts.status}`] : []),
              `--limit ${opts.limit}`,
            ];
            out(c.dim(`more: onceflow runs ${filters.join(" ")} --cursor ${nextCursor}`));
          }
          return 0;
        },
      ),
    );

  p.command("get")
    .argument("<run>", "a run id")
    .description("a run: its status, input, output and each task's progress (GET /runs/{id})")
    .action(
      action(async (client, options, runId: string) => {
        const run = await client.getRun(runId);
        if (options.json) {
          printJson(run);
          return 0;
        }
        const c = colorsFor(process.stdout);
        const lines = [
          runHeader(c, run),
          `  created ${when(run.createdAt)}${run.startedAt ? `  started ${when(run.startedAt)}` : ""}${run.endedAt ? `  ended ${when(run.endedAt)}` : ""}`,
          `  input   ${JSON.stringify(run.input)}`,
        ];
        if (run.status === "succeeded") lines.push(`  output  ${JSON.stringify(run.output)}`);
        if (run.error) lines.push(`  error   ${c.red(errorText(run.error))}`);
        if (run.concurrencyKey !== undefined) lines.push(`  concurrency key ${run.concurrencyKey}`);
        lines.push("tasks:", ...taskLines(c, run));
        out(lines.join("\n"));
        return 0;
      }),
    );

  p.command("events")
    .argument("<run>", "a run id")
    .option("-f, --follow", "keep printing new events until the run ends (exit code as for watch)")
    .option("--interval <ms>", "between two polls, with --follow", positiveInt, 1000)
    .description("a run's history, in order (GET /runs/{id}/events)")
    .action(
      action(async (client, options, runId: string, opts: { follow?: boolean; interval: number }) => {
        const c = colorsFor(process.stdout, !options.json);
        const print = (event: RunEvent) => out(options.json ? JSON.stringify(event) : eventLine(c, event));
        if (!opts.follow) {
          const events = await client.getEvents(runId);
          if (options.json) printJson({ events });
          else for (const event of events) print(event);
          return 0;
        }
        // following: one JSON line per event with --json; an event is new unless one like it was printed
        const printed = new Set<string>();
        for (;;) {
          const [events, run] = await Promise.all([client.getEvents(runId), client.getRun(runId)]);
          for (const event of events) {
            const { seq: _seq, ...identity } = event;
            const key = JSON.stringify(identity);
            if (printed.has(key)) continue;
            printed.add(key);
            print(event);
          }
          if (["succeeded", "failed", "cancelled"].includes(run.status)) {
            // the run's last events are written with its end: they are in this read or the next
            const last = await client.getEvents(runId);
            for (const event of last) {
              const { seq: _seq, ...identity } = event;
              const key = JSON.stringify(identity);
              if (!printed.has(key)) {
                printed.add(key);
                print(event);
              }
            }
            return exitCodeOf(run);
          }
          await new Promise((resolve) => setTimeout(resolve, opts.interval));
        }
      }),
    );

  for (const [name, describe] of [
    ["trigger", "start a run created with --no-start (POST /runs/{id}/trigger)"],
    ["cancel", "cancel a run: nothing is dispatched after it (POST /runs/{id}/cancel)"],
    ["redrive", "restart a failed run from what failed (POST /runs/{id}/redrive)"],
  ] as const) {
    p.command(name)
      .argument("<run>", "a run id")
      .description(describe)
      .action(
        action(async (client, options, runId: string) => {
          const result =
            name === "trigger"
              ? await client.triggerRun(runId)
              : name === "cancel"
                ? await client.cancelRun(runId)
                : await client.redriveRun(runId);
          if (options.json) printJson(result);
          else
            out(
              `run ${result.runId} ${result.status}${"redriveCount" in result ? ` (redrive ${result.redriveCount})` : ""}`,
            );
          return 0;
        }),
      );
  }

  p.command("callback")
    .argument("<token>", "the token a core.callback task issued")
    .option(
      "--body <json>",
      'the result: {"output": ANY} or {"error": {"code"?, "message"}}; JSON, @file or @-',
      '{"output": null}',
    )
    .option("--heartbeat", "send a heartbeat instead (POST /callbacks/{token}/heartbeat)")
    .description("complete a waiting callback task (POST /callbacks/{token})")
    .action(
      action(async (client, options, token: string, opts: { body: string; heartbeat?: boolean }) => {
        if (opts.heartbeat) {
          const beat = await client.heartbeatCallback(token);
          if (options.json) printJson(beat);
          else out(`alive until ${beat.heartbeatUntil}`);
          return 0;
        }
        const { value } = await readValue("--body", opts.body);
        const answer = await client.completeCallback(
          token,
          value as Parameters<OnceflowClient["completeCallback"]>[1],
        );
        if (options.json) printJson(answer);
        else
          out(
            `${answer.task}${answer.item === undefined ? "" : `[${answer.item}]`} of run ${answer.runId}: ${answer.status}${answer.changed ? "" : " (already, with this body)"}`,
          );
        return 0;
      }),
    );

  p.command("workflows")
    .argument("[name]", "a workflow: list its versions")
    .description("the workflows with their latest version, or one workflow's versions")
    .action(
      action(async (client, options, name: string | undefined) => {
        const c = colorsFor(process.stdout);
        if (name) {
          const { versions } = await client.listVersions(name);
          if (options.json) printJson({ name, versions });
          else
            out(
              table(
                c,
                ["VERSION", "REGISTERED", "HASH"],
                versions.map((v) => [String(v.version), when(v.createdAt), v.hash]),
              ),
            );
          return 0;
        }
        const workflows = await client.listWorkflows();
        if (options.json) printJson({ workflows });
        else if (workflows.length === 0) out(c.dim("no workflows (onceflow apply FILE registers one)"));
        else
          out(
            table(
              c,
              ["NAME", "VERSION", "REGISTERED"],
              workflows.map((w) => [w.name, String(w.version), when(w.createdAt)]),
            ),
          );
        return 0;
      }),
    );

  return p;
}

await program().parseAsync(process.argv);
