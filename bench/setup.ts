/**
 * What every scenario shares: the emulators (DynamoDB Local and the SQS emulator, started once),
 * one local stack per scenario on them (its own stage, so its own table and queues, with the
 * worker concurrency the scenario asks for), handlers wrapped to count Lambda invocations and
 * their durations, and the typed client (lib/client) of its API.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { APIGatewayProxyEventV2, Context, SQSEvent } from "aws-lambda";
import { handler as advanceHandler } from "../functions/advance";
import { handler as apiHandler } from "../functions/api";
import { handler as sweeperHandler } from "../functions/sweeper";
import { handler as workerHandler } from "../functions/worker";
import { startDynamoDbLocal } from "../infra/local/dynamodb-local";
import { consoleLog } from "../infra/local/log";
import { startSqsEmulator } from "../infra/local/sqs-emulator";
import {
  type AnyLambdaHandler,
  type LocalEndpoints,
  type LocalStack,
  startLocalStack,
} from "../infra/local/stack";
import { createClient, isTerminal, type OnceflowClient, type RunView } from "../lib/client";
import { executions } from "./actions";

export interface Emulators {
  endpoints: LocalEndpoints;
  stop(): Promise<void>;
}

/** DynamoDB Local and fauxqs, once for the whole benchmark (or the endpoints of AWS_ENDPOINT_URL). */
export async function startEmulators(): Promise<Emulators> {
  const shared = process.env.AWS_ENDPOINT_URL;
  if (shared) return { endpoints: { dynamodb: shared, sqs: shared }, stop: async () => {} };
  const [dynamodb, sqs] = await Promise.allSettled([startDynamoDbLocal(), startSqsEmulator()]);
  if (dynamodb.status === "rejected" || sqs.status === "rejected") {
    if (dynamodb.status === "fulfilled") await dynamodb.value.stop();
    if (sqs.status === "fulfilled") await sqs.value.stop();
    throw dynamodb.status === "rejected" ? dynamodb.reason : (sqs as PromiseRejectedResult).reason;
  }
  return {
    endpoints: { dynamodb: dynamodb.value.endpoint, sqs: sqs.value.endpoint },
    async stop() {
      await Promise.all([sqs.value.stop(), dynamodb.value.stop()]);
    },
  };
}

/** Invocations of one function: how many, how long, and how long their messages waited in the queue. */
export interface InvocationFigures {
  invocations: number;
  records: number;
  ms: number;
  /** Summed time from a message's send to its first delivery (first receives only). */
  queueWaitMs: number;
  firstDeliveries: number;
}

/**
 * Which invocation an AWS call belongs to: `worker`, `advance`, `sweeper`, `api POST` (and so on by
 * method), or undefined outside any handler (the pollers, standing in for Lambda's event source).
 */
export const invocationLabel = new AsyncLocalStorage<string>();

export class Invocations {
  readonly byFunction = new Map<string, InvocationFigures>();

  wrap(name: string, handler: AnyLambdaHandler): AnyLambdaHandler {
    return (async (event: never, context: Context) => {
      const started = Date.now();
      const method = (event as Partial<APIGatewayProxyEventV2>).requestContext?.http?.method;
      const label = method ? `${name} ${method}` : name;
      const figures = this.figuresOf(label);
      figures.invocations++;
      const records = (event as Partial<SQSEvent>).Records;
      if (Array.isArray(records)) {
        figures.records += records.length;
        for (const record of records) {
          if (record.attributes?.ApproximateReceiveCount !== "1") continue;
          figures.queueWaitMs += started - Number(record.attributes.SentTimestamp);
          figures.firstDeliveries++;
        }
      }
      try {
        return await invocationLabel.run(label, () => handler(event, context));
      } finally {
        figures.ms += Date.now() - started;
      }
    }) as AnyLambdaHandler;
  }

  private figuresOf(name: string): InvocationFigures {
    let figures = this.byFunction.get(name);
    if (!figures) {
      figures = { invocations: 0, records: 0, ms: 0, queueWaitMs: 0, firstDeliveries: 0 };
      this.byFunction.set(name, figures);
    }
    return figures;
  }

  reset(): void {
    this.byFunction.clear();
  }
}

export interface BenchStack {
  stack: LocalStack;
  /** `http://127.0.0.1:PORT` */
  apiUrl: string;
  /** The typed client of the stack's API. */
  client: OnceflowClient;
  invocations: Invocations;
  stop(): Promise<void>;
}

export interface BenchStackOptions {
  /** Concurrent worker invocations (poll loops on tasks.fifo). */
  workers: number;
  /** Tasks per worker invocation (default: serverless.yml's batchSize, 10). */
  tasksPerInvocation?: number;
  /** Concurrent advance invocations (default: serverless.yml's maximumConcurrency, 4). */
  advancers?: number;
}

let stages = 0;

/** A local stack of its own (stage `bench{n}`) on the shared emulators, its handlers counted. */
export async function startBenchStack(emulators: Emulators, options: BenchStackOptions): Promise<BenchStack> {
  // handler errors (e.g. transaction conflicts given up on) are retried by SQS: the figures say so
  process.env.POWERTOOLS_LOG_LEVEL ??= "CRITICAL";
  const invocations = new Invocations();
  const handlers: Record<string, AnyLambdaHandler> = {
    api: invocations.wrap("api", apiHandler as AnyLambdaHandler),
    worker: invocations.wrap("worker", workerHandler as AnyLambdaHandler),
    advance: invocations.wrap("advance", advanceHandler as AnyLambdaHandler),
    sweeper: invocations.wrap("sweeper", sweeperHandler as AnyLambdaHandler),
  };
  const stack: LocalStack = await startLocalStack({
    stage: `bench${++stages}${process.pid}`,
    port: 0,
    endpoints: emulators.endpoints,
    chaos: null,
    handlers,
    pollerConcurrency: { worker: options.workers, advance: options.advancers ?? 4 },
    ...(options.tasksPerInvocation ? { batchSizes: { worker: options.tasksPerInvocation } } : {}),
    log: consoleLog({ prefix: "[stack]", minLevel: "error" }),
  });
  return {
    stack,
    apiUrl: stack.apiUrl,
    client: createClient(stack.apiUrl),
    invocations,
    stop: () => stack.stop(),
  };
}

/**
 * Waits for every run to end and returns them (as GET /runs/{id} shows them). Polls gently: the
 * figures come from the runs' own `endedAt` and events, not from when the poll saw them.
 */
export async function waitForRuns(
  bench: BenchStack,
  runIds: string[],
  timeoutMs: number,
): Promise<RunView[]> {
  const deadline = Date.now() + timeoutMs;
  const done = new Map<string, RunView>();
  let cursor = 0;
  while (done.size < runIds.length) {
    if (Date.now() > deadline) throw new Error(`${runIds.length - done.size} run(s) did not end in time`);
    const open = runIds.filter((id) => !done.has(id));
    // look at the oldest open runs first, a few at a time
    const batch = open.slice(0, 8);
    cursor++;
    const runs = await Promise.all(batch.map((id) => bench.client.getRun(id)));
    let progressed = false;
    for (const [k, run] of runs.entries()) {
      if (isTerminal(run.status)) {
        done.set(batch[k] as string, run);
        progressed = true;
      }
    }
    if (!progressed) await new Promise((resolve) => setTimeout(resolve, Math.min(500, 50 * cursor)));
    else cursor = 0;
  }
  return runIds.map((id) => done.get(id) as RunView);
}

/**
 * Waits until the bench's actions have run `count` times in all (`executions`, actions.ts), or
 * `timeoutMs` has passed, looking in this process every 100 ms. Asking the API about runs while
 * they run loads the one thread every handler shares here (about 2 ms of it a task in
 * `efficiency`); after this, `waitForRuns` asks about runs that are ending.
 */
export async function untilExecuted(count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (executions.total < count && Date.now() < deadline) await sleep(100);
}

export { mapLimit } from "../lib/map-limit";
