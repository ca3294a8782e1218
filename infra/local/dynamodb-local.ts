/**
 * Runs DynamoDB Local, AWS's own emulator, as a Java child process. Its jar ships inside the npm
 * package `amplify-dynamodb-simulator`. The child never outlives this Node.js process: it is
 * killed on `exit`, and on SIGINT/SIGTERM/SIGHUP when nobody else handles those signals.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { type LocalLog, silentLog } from "./log";

export interface DynamoDbLocalOptions {
  /** Port to listen on; a free one when absent or 0. */
  port?: number;
  /** Keep data in this folder (`-dbPath dir -sharedDb`); in memory when absent. */
  dataDir?: string;
  /** The folder holding DynamoDBLocal.jar and DynamoDBLocal_lib; found in node_modules by default. */
  emulatorDir?: string;
  /** The java executable; `java` from PATH by default. */
  java?: string;
  /**
   * JVM options. The default keeps to the quick C1 compiler, which starts DynamoDB Local about a
   * second sooner and spares CPU on small machines.
   */
  jvmArgs?: string[];
  /** How long to wait for the first answer. */
  startTimeoutMs?: number;
  log?: LocalLog;
}

export interface DynamoDbLocal {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  port: number;
  pid: number;
  /** Stops the emulator and waits for the process to exit. */
  stop(): Promise<void>;
}

/** Starts DynamoDB Local and resolves once it answers ListTables. */
export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const emulatorDir = options.emulatorDir ?? findEmulatorDir();
  const jar = join(emulatorDir, "DynamoDBLocal.jar");
  if (!existsSync(jar)) {
    throw new Error(`DynamoDB Local not found at ${jar}: is amplify-dynamodb-simulator installed (npm ci)?`);
  }
  // A free port is found before java binds it; if another process takes it in between, try again.
  const attempts = options.port ? 1 : 3;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const port = options.port || (await findFreePort());
    try {
      return await launch({ ...options, emulatorDir, jar, port });
    } catch (error) {
      lastError = error;
      if (!(error instanceof PortInUseError)) throw error;
    }
  }
  throw lastError;
}

class PortInUseError extends Error {}

async function launch(
  options: DynamoDbLocalOptions & { emulatorDir: string; jar: string; port: number },
): Promise<DynamoDbLocal> {
  const log = options.log ?? silentLog;
  const java = options.java ?? "java";
  const args = [
    ...(options.jvmArgs ?? ["-XX:TieredStopAtLevel=1"]),
    `-Djava.library.path=${join(options.emulatorDir, "DynamoDBLocal_lib")}`,
    "-jar",
    options.jar,
  ];
  args.push("-port", String(options.port), "-disableTelemetry", "-sharedDb");
  if (options.dataDir) {
    const dataDir = resolve(options.dataDir);
    mkdirSync(dataDir, { recursive: true });
    args.push("-dbPath", dataDir);
  } else {
    args.push("-inMemory");
  }

  // Its own process group: a terminal's Ctrl-C reaches only us, and we stop it after the handlers.
  const child = spawn(java, args, {
    cwd: options.emulatorDir,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.once("exit", (code, signal) => resolveExit({ code, signal }));
  });
  const failedToSpawn = new Promise<never>((_, reject) => {
    child.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") {
        reject(
          new Error(
            `DynamoDB Local needs Java 17 or newer, and "${java}" was not found on PATH ` +
              "(on Debian/Ubuntu: apt-get install openjdk-17-jre-headless)",
          ),
        );
      } else reject(new Error(`could not start DynamoDB Local with "${java}": ${error.message}`));
    });
  });
  failedToSpawn.catch(() => {});

  if (child.pid !== undefined) track(child);
  const endpoint = `http://127.0.0.1:${options.port}`;
  const exitedEarly = exited.then(({ code, signal }) => {
    const detail = `exited (${signal ?? `code ${code}`}) before answering:\n${output.trim()}`;
    if (/BindException|Address already in use/i.test(output))
      throw new PortInUseError(`port ${options.port} is in use`);
    throw new Error(`DynamoDB Local ${detail}`);
  });
  exitedEarly.catch(() => {});

  try {
    await Promise.race([
      waitUntilAnswering(endpoint, options.startTimeoutMs ?? 30_000),
      exitedEarly,
      failedToSpawn,
    ]);
  } catch (error) {
    child.kill("SIGKILL");
    untrack(child);
    throw error;
  }
  log.info(
    `DynamoDB Local listening on ${endpoint} (${options.dataDir ? `data in ${options.dataDir}` : "in memory"})`,
  );

  let stopping: Promise<void> | undefined;
  return {
    endpoint,
    port: options.port,
    pid: child.pid as number,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGTERM");
          const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
          await exited;
          clearTimeout(killer);
        }
        untrack(child);
        log.info("DynamoDB Local stopped");
      })();
      return stopping;
    },
  };
}

async function waitUntilAnswering(endpoint: string, timeoutMs: number): Promise<void> {
  const client = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
  });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(2000) });
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(`DynamoDB Local did not answer on ${endpoint} within ${timeoutMs} ms`, {
            cause: error,
          });
        }
        await new Promise((done) => setTimeout(done, 100));
      }
    }
  } finally {
    client.destroy();
  }
}

function findEmulatorDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("amplify-dynamodb-simulator/package.json")), "emulator");
}

/** Asks the OS for a port that is free right now. */
export async function findFreePort(host = "127.0.0.1"): Promise<number> {
  return await new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

// Children that must die with this process.
const children = new Set<ChildProcess>();
const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  }
  children.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  // Someone else (main.ts, a test runner) handles the signal and will stop things in order; the
  // `exit` hook is the safety net then. Alone, kill the children and die of the signal as usual.
  if (process.listenerCount(signal) > 1) return;
  killAll();
  uninstall();
  process.kill(process.pid, signal);
}

function install(): void {
  process.on("exit", killAll);
  for (const signal of signals) process.on(signal, onSignal);
}

function uninstall(): void {
  process.off("exit", killAll);
  for (const signal of signals) process.off(signal, onSignal);
}

function track(child: ChildProcess): void {
  if (children.size === 0) install();
  children.add(child);
  child.once("exit", () => untrack(child));
}

function untrack(child: ChildProcess): void {
  children.delete(child);
  if (children.size === 0) uninstall();
}
