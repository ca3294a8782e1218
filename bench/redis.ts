/**
 * A throwaway Redis for the peer benchmark: the system's `redis-server` (installed with apt-get when
 * missing), on a free loopback port, with no persistence, stopped at the end.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { findFreePort } from "../infra/local/dynamodb-local";

export interface RedisServer {
  port: number;
  stop(): Promise<void>;
}

function onPath(command: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Installs Debian's redis-server when it is not there (the benchmark runs as root, as CI does). */
export function ensureRedisServer(log: (line: string) => void): void {
  if (onPath("redis-server")) return;
  log("redis-server not found: installing it with apt-get");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () =>
    execFileSync("apt-get", ["install", "-y", "-qq", "redis-server"], { stdio: "inherit", env });
  try {
    install();
  } catch {
    execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
    install();
  }
  // the package starts a system service on 6379: this benchmark uses a server of its own
  if (!onPath("redis-server")) throw new Error("redis-server is still missing after apt-get install");
}

export async function startRedis(log: (line: string) => void): Promise<RedisServer> {
  ensureRedisServer(log);
  const port = await findFreePort();
  const child: ChildProcess = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"],
    { stdio: "ignore" },
  );
  const kill = () => child.kill("SIGKILL");
  process.once("exit", kill);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on("error", () => {});
  for (let attempt = 0; ; attempt++) {
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (error) {
      if (attempt > 50 || child.exitCode !== null) {
        kill();
        throw new Error(`redis-server did not answer on port ${port}: ${String(error)}`);
      }
      client.disconnect();
      await sleep(100);
    }
  }
  client.disconnect();
  return {
    port,
    async stop() {
      process.off("exit", kill);
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await Promise.race([exited, sleep(5000).then(kill)]);
      }
    },
  };
}
