/**
 * `npm start`: the whole of onceflow on this machine. Starts the local stack on $PORT (default
 * 3000), runs the example workflow (unless `--no-example`), prints curl commands to try, and keeps
 * serving until Ctrl-C or SIGTERM, which stop everything (no java process is left) and exit 0.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createClient, isOnceflowError } from "../../lib/client";
import { consoleLog } from "./log";
import { type LocalStack, repoRoot, startLocalStack } from "./stack";

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const runExample = !args.includes("--no-example");
  const port = Number(process.env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT must be a port number, not "${process.env.PORT}"`);

  let stack: LocalStack | undefined;
  let starting: Promise<LocalStack> | undefined;
  let stopping = false;
  let firstSignalAt = 0;
  const shutdown = (signal: NodeJS.Signals) => {
    const now = Date.now();
    // A terminal's Ctrl-C can reach us twice (directly and relayed by tsx): only a later one forces.
    if (stopping) {
      if (now - firstSignalAt > 1000) {
        console.error(`\n${signal} again: exiting without waiting`);
        process.exit(1);
      }
      return;
    }
    stopping = true;
    firstSignalAt = now;
    console.log(`\n${signal}: stopping the local stack (Ctrl-C again to force)...`);
    const stopped = (stack ? Promise.resolve(stack) : (starting ?? Promise.resolve(undefined)))
      .then((running) => running?.stop())
      .then(
        () => process.exit(0),
        (error) => {
          console.error("error while stopping", error);
          process.exit(1);
        },
      );
    void stopped;
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);

  const dataDir = process.env.DATA_DIR || undefined;
  starting = startLocalStack({ port, dataDir, log: consoleLog({ prefix: "[local]" }) });
  stack = await starting;
  if (stopping) return;

  console.log("");
  console.log(`onceflow is running locally (stage "${stack.stage}", region ${stack.region})`);
  console.log(`  HTTP API  ${stack.apiUrl}`);
  console.log(`  console   ${stack.apiUrl}/  (the web console: docs/console.md)`);
  console.log(`  DynamoDB  ${stack.endpoints.dynamodb}  (table ${stack.env.TABLE_NAME})`);
  console.log(`  SQS       ${stack.endpoints.sqs}`);
  console.log(`  data      ${dataDir ? dataDir : "in memory (set DATA_DIR to keep it)"}`);
  console.log("");

  let runId: string | undefined;
  if (runExample) runId = await runHelloExample(stack.apiUrl);
  if (stopping) return;
  printCurlExamples(stack.apiUrl, runId);
  console.log("\nServing. Ctrl-C to stop.");
}

/** Registers examples/hello.yaml, runs it with examples/hello.input.json and prints the final run. */
async function runHelloExample(apiUrl: string): Promise<string | undefined> {
  const definitionPath = join(repoRoot, "examples", "hello.yaml");
  if (!existsSync(definitionPath)) {
    console.log("(examples/hello.yaml is missing: skipping the example run)");
    return undefined;
  }
  const inputPath = join(repoRoot, "examples", "hello.input.json");
  // The file is either the request body (`{"input": ...}`) or just the input.
  const parsed: unknown = existsSync(inputPath) ? JSON.parse(readFileSync(inputPath, "utf8")) : {};
  const input = typeof parsed === "object" && parsed !== null && "input" in parsed ? parsed.input : parsed;
  const client = createClient({ baseUrl: apiUrl });

  try {
    console.log("Example: PUT /workflows/hello (examples/hello.yaml)");
    const registered = await client.putWorkflow("hello", readFileSync(definitionPath, "utf8"));
    console.log(`  -> version ${registered.version}${registered.created ? "" : " (unchanged)"}`);

    console.log("Example: POST /workflows/hello/runs");
    const { runId, status } = await client.createRun("hello", { input });
    console.log(`  -> run ${runId}, ${status}`);

    console.log(`Example: waiting for run ${runId}...`);
    try {
      console.log(
        JSON.stringify(await client.waitForRun(runId, { timeoutMs: 60_000, intervalMs: 250 }), null, 2),
      );
    } catch (error) {
      if (!isOnceflowError(error, "WaitTimedOut")) throw error;
      console.log("  (still not finished after 60 s; this is where it stands)");
      console.log(JSON.stringify(error.fields.run, null, 2));
    }
    return runId;
  } catch (error) {
    if (!isOnceflowError(error)) throw error;
    console.log(`  -> ${error.status} ${error.code}: ${error.message}`);
    for (const problem of error.problems) console.log(`     ${problem.path}: ${problem.message}`);
    return undefined;
  }
}

function printCurlExamples(apiUrl: string, runId: string | undefined): void {
  const run = runId ?? "RUN_ID";
  const url = apiUrl === "http://127.0.0.1:3000" ? "" : ` --url ${apiUrl}`;
  console.log("\nTry it with the CLI (docs/cli.md):");
  console.log(`  npx onceflow${url} run hello --input @examples/hello.input.json`);
  console.log(`  npx onceflow${url} runs`);
  console.log(`  npx onceflow${url} events ${run}`);
  console.log("\nOr with curl:");
  console.log(`  curl -s ${apiUrl}/health`);
  console.log(
    `  curl -s -X PUT ${apiUrl}/workflows/hello -H 'Content-Type: application/yaml' --data-binary @examples/hello.yaml`,
  );
  console.log(`  curl -s ${apiUrl}/workflows/hello`);
  console.log(
    `  curl -s -X POST ${apiUrl}/workflows/hello/runs -H 'Content-Type: application/json' ` +
      "--data-binary @examples/hello.input.json",
  );
  console.log(
    `  curl -s -X POST ${apiUrl}/workflows/hello/runs -H 'Content-Type: application/json' ` +
      `-H 'Idempotency-Key: try-1' -d '{"input": {"name": "you"}, "start": false}'`,
  );
  console.log(`  curl -s -X POST ${apiUrl}/runs/${run}/trigger`);
  console.log(`  curl -s ${apiUrl}/runs/${run}`);
  console.log(`  curl -s ${apiUrl}/runs/${run}/events`);
}

main().catch((error) => {
  console.error("[local] could not start:", error instanceof Error ? error.message : error);
  if (error instanceof Error && error.cause) console.error(error.cause);
  process.exit(1);
});
