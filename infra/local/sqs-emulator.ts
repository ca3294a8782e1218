/**
 * Runs the SQS emulator fauxqs inside this process (FIFO queues, deduplication ids, visibility
 * timeouts, redrive to dead-letter queues). It is loaded only when started, so a stack pointed at
 * another endpoint (AWS_ENDPOINT_URL) never loads it.
 */
import { join, resolve } from "node:path";
import { type LocalLog, silentLog } from "./log";

export interface SqsEmulatorOptions {
  /** Port to listen on; a free one when absent or 0. */
  port?: number;
  /** Region used when a request does not say which. */
  region?: string;
  /** Keep queues and messages in `<dataDir>/sqs` (SQLite); in memory when absent. */
  dataDir?: string;
  log?: LocalLog;
}

export interface SqsEmulator {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

export async function startSqsEmulator(options: SqsEmulatorOptions = {}): Promise<SqsEmulator> {
  const log = options.log ?? silentLog;
  const { startFauxqs } = await importQuietly(() => import("fauxqs"));
  const dataDir = options.dataDir ? join(resolve(options.dataDir), "sqs") : undefined;
  const server = await startFauxqs({
    port: options.port ?? 0,
    logger: false,
    defaultRegion: options.region ?? "us-east-1",
    ...(dataDir ? { dataDir } : {}),
  });
  // fauxqs listens on every interface and names queues `http://sqs.REGION.localhost:PORT/...`; the
  // SDK sends to the configured endpoint whatever the queue URL's host.
  const endpoint = `http://127.0.0.1:${server.port}`;
  log.info(
    `SQS emulator (fauxqs) listening on ${endpoint} (${dataDir ? `data in ${dataDir}` : "in memory"})`,
  );
  let stopping: Promise<void> | undefined;
  return {
    endpoint,
    port: server.port,
    stop() {
      stopping ??= server.stop().then(() => log.info("SQS emulator stopped"));
      return stopping;
    },
  };
}

/**
 * fauxqs loads `node:sqlite`, whose import prints "SQLite is an experimental feature" on Node 22.
 * Drops exactly that warning while the module loads; every other warning goes through.
 */
async function importQuietly<T>(load: () => Promise<T>): Promise<T> {
  const emitWarning = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const message = typeof warning === "string" ? warning : warning.message;
    if (/SQLite is an experimental feature/.test(message)) return;
    (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return await load();
  } finally {
    process.emitWarning = emitWarning;
  }
}

let localhostDns: { users: number; restore: () => void } | undefined;

/**
 * fauxqs names its queues `http://sqs.REGION.localhost:PORT/...`, and the AWS SDK sends SQS calls
 * to the queue URL's host. Names under `.localhost` are loopback (RFC 6761), but glibc does not
 * resolve them, so this makes `*.localhost` resolve to 127.0.0.1 in this process (through
 * fauxqs's own `interceptLocalhostDns`). Returns a release function; the last release restores
 * the original `dns.lookup`.
 */
export async function resolveLocalhostSubdomains(): Promise<() => void> {
  if (localhostDns) localhostDns.users++;
  else {
    const { interceptLocalhostDns } = await importQuietly(() => import("fauxqs"));
    if (localhostDns) (localhostDns as { users: number }).users++;
    else localhostDns = { users: 1, restore: interceptLocalhostDns("localhost") };
  }
  let released = false;
  return () => {
    if (released || !localhostDns) return;
    released = true;
    localhostDns.users--;
    if (localhostDns.users === 0) {
      localhostDns.restore();
      localhostDns = undefined;
    }
  };
}
