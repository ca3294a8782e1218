/**
 * The whole local stack, composed from serverless.yml: DynamoDB Local and the SQS emulator (or
 * endpoints that already run), the tables and queues, the environment the handlers read, the
 * handlers themselves in this process, the HTTP API, one SQS poller per `sqs` event and one timer
 * per `schedule` event.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { type QueueAttributeName, SQSClient } from "@aws-sdk/client-sqs";
import type { Context, ScheduledEvent, SQSEvent } from "aws-lambda";
import { ensureConsoleBuilt } from "../../console/build";
import { Chaos, type ChaosOptions, type ChaosReport, parseChaos } from "./chaos";
import { type DynamoDbLocal, startDynamoDbLocal } from "./dynamodb-local";
import { type GatewayRoute, type HttpGateway, startHttpGateway } from "./http-gateway";
import { type Denial, LocalIam } from "./iam";
import { invokeLambda, type LambdaFunctionInfo, type LambdaHandler } from "./lambda-context";
import { consoleLog, type LocalLog } from "./log";
import {
  type CreatedResources,
  createResources,
  queueByArn,
  resolveEnvironment,
  resolveIntrinsics,
} from "./resources";
import {
  type FunctionConfig,
  loadServerlessConfig,
  localAccountId,
  type ServerlessConfig,
} from "./serverless-config";
import { resolveLocalhostSubdomains, type SqsEmulator, startSqsEmulator } from "./sqs-emulator";
import { type SqsPoller, startSqsPoller } from "./sqs-poller";

/** A handler of any event type; the stack calls it with the event its trigger builds. */
export type AnyLambdaHandler = (event: never, context: Context) => unknown;

export interface LocalEndpoints {
  dynamodb: string;
  sqs: string;
}

export interface LocalStackOptions {
  /** HTTP API port: default 3000; 0 for a free one. */
  port?: number;
  /** HTTP API host: default 127.0.0.1. */
  host?: string;
  /** Default "local". Table and queue names include it, so stages never share resources. */
  stage?: string;
  /** Default "us-east-1". */
  region?: string;
  /** Keep DynamoDB and SQS data in this folder (default: env DATA_DIR; in memory when neither). */
  dataDir?: string;
  /** Reuse emulators that already run instead of starting them. */
  endpoints?: LocalEndpoints;
  /** Handlers by function name, replacing the modules serverless.yml points at (for tests). */
  handlers?: Record<string, AnyLambdaHandler>;
  /** Concurrent poll loops per SQS event source: one number for all, or by function name. Default 4. */
  pollerConcurrency?: number | Record<string, number>;
  /** Records per batch by function name, replacing serverless.yml's `batchSize` (e.g. one task an invocation). */
  batchSizes?: Record<string, number>;
  /** Refuse a handler's calls its role in serverless.yml does not grant (iam.ts). Default true. */
  iam?: boolean;
  /** Faults to inject (see chaos.ts); default from `ONCEFLOW_CHAOS`; `null` for none. */
  chaos?: ChaosOptions | null;
  /** Run the sweeper: its `schedule` events and its queue's. Default true. */
  sweeper?: boolean;
  /** Replace every schedule's rate with this interval. */
  scheduleIntervalMs?: number;
  /** Environment variables overriding serverless.yml's (e.g. a faster sweep in tests). */
  environment?: Record<string, string>;
  /** Queue attributes overriding serverless.yml on every queue (e.g. a short VisibilityTimeout in tests). */
  queueAttributeOverrides?: Partial<Record<QueueAttributeName, string>>;
  /** Another serverless.yml (default: the repository's). */
  serverlessPath?: string;
  /** Where handler paths are relative to (default: the repository root). */
  rootDir?: string;
  log?: LocalLog;
}

export interface LocalStack {
  /** `http://127.0.0.1:PORT` */
  apiUrl: string;
  stage: string;
  region: string;
  endpoints: LocalEndpoints;
  /** Which emulators this stack started (and will stop). */
  started: { dynamodb: boolean; sqs: boolean };
  resources: CreatedResources;
  /** The resolved `provider.environment` (and functions' `environment`). */
  env: Record<string, string>;
  config: ServerlessConfig;
  clients: { dynamodb: DynamoDBClient; sqs: SQSClient };
  /** The faults injected so far, when chaos is on. */
  chaos?: ChaosReport;
  /** The calls refused so far because a role does not grant them (iam.ts); empty when not checked. */
  denied: Denial[];
  /** Invokes a function directly, with a fresh Lambda context and its timeout. */
  invoke(functionName: string, event: unknown): Promise<unknown>;
  /** Stops pollers, the HTTP API and timers, then the emulators this stack started. */
  stop(): Promise<void>;
}

/** The repository root (where serverless.yml and functions/ live). */
export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** Environment variables meant for the Lambda runtime, not for an already running process. */
const runtimeOnlyEnv = new Set(["NODE_OPTIONS"]);

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const startedAt = Date.now();
  const log = options.log ?? consoleLog();
  const stage = options.stage ?? "local";
  const region = options.region ?? "us-east-1";
  const rootDir = options.rootDir ?? repoRoot;
  const dataDir = options.dataDir ?? (process.env.DATA_DIR || undefined);
  const config = loadServerlessConfig({ path: options.serverlessPath, stage, region });

  const cleanup: (() => Promise<void>)[] = [];
  const runCleanup = async () => {
    for (const step of cleanup.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        log.error("error while stopping the local stack", error);
      }
    }
  };

  try {
    const { endpoints, started } = await provideEndpoints(options, dataDir, region, log, cleanup);
    setAwsEnvironment(endpoints, region);

    const credentials = {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID as string,
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY as string,
    };
    const dynamodb = new DynamoDBClient({ endpoint: endpoints.dynamodb, region, credentials });
    // every poller holds a socket in its long poll: the SDK's default pool of 50 would starve some
    const sqs = new SQSClient({
      endpoint: endpoints.sqs,
      region,
      credentials,
      requestHandler: { httpAgent: { keepAlive: true, maxSockets: 1024 } },
    });
    cleanup.push(async () => {
      dynamodb.destroy();
      sqs.destroy();
    });

    const resources = await createResources(config.resources.Resources, {
      dynamodb,
      sqs,
      namePrefix: `${config.service}-${stage}`,
      queueAttributeOverrides: options.queueAttributeOverrides,
      log,
    });

    // fauxqs names queues http://sqs.REGION.localhost:PORT/...; the SDK sends SQS calls to the queue
    // URL's host (and warns on every call when it differs from the endpoint). So the handlers get
    // that origin as their SQS endpoint, and *.localhost resolves to loopback in this process.
    const queueUrls = Object.values(resources).flatMap((resource) =>
      resource.type === "AWS::SQS::Queue" ? [new URL(resource.url)] : [],
    );
    const localhostQueue = queueUrls.find(
      (url) => url.hostname.endsWith(".localhost") && url.port === new URL(endpoints.sqs).port,
    );
    if (localhostQueue) {
      const release = await resolveLocalhostSubdomains();
      cleanup.push(async () => release());
      process.env.AWS_ENDPOINT_URL_SQS = localhostQueue.origin;
    }

    const env = {
      ...resolveEnvironment(
        Object.assign(
          {},
          config.provider.environment,
          ...Object.values(config.functions).map((fn) => fn.environment),
        ),
        resources,
      ),
      ...options.environment,
    };
    for (const [name, value] of Object.entries(env)) {
      if (!runtimeOnlyEnv.has(name)) process.env[name] = value;
    }

    const infoOf = (fn: FunctionConfig): LambdaFunctionInfo => ({
      service: config.service,
      stage,
      region,
      name: fn.name,
      timeout: fn.timeout,
      memorySize: fn.memorySize,
    });
    const handlers = new Map<string, AnyLambdaHandler>();
    const chaosOptions = options.chaos === undefined ? parseChaos() : options.chaos;
    const chaos = chaosOptions
      ? new Chaos(chaosOptions, { sqs, urlOf: (arn) => queueByArn(resources, arn)?.url })
      : undefined;
    if (chaos) {
      log.warn(`chaos is on: ${JSON.stringify(chaosOptions)}`);
      cleanup.push(async () => chaos.close());
    }
    const iam = options.iam === false ? undefined : new LocalIam(config, resources);
    if (iam) cleanup.push(async () => iam.close());
    const handlerOf = async (fn: FunctionConfig): Promise<AnyLambdaHandler> => {
      let handler = handlers.get(fn.name);
      if (!handler) {
        handler = options.handlers?.[fn.name] ?? (await importHandler(rootDir, fn));
        if (chaos) handler = chaos.wrap(fn.name, handler);
        if (iam) handler = iam.wrap(fn.name, handler);
        handlers.set(fn.name, handler);
      }
      return handler;
    };
    const functionNamed = (name: string): FunctionConfig => {
      const fn = config.functions[name];
      if (!fn) throw new Error(`serverless.yml has no function "${name}"`);
      return fn;
    };

    // the web console's assets (console/dist), which the api function serves: built when missing or stale
    try {
      if (await ensureConsoleBuilt()) log.info("built the web console (console/dist)");
    } catch (error) {
      log.error("could not build the web console: the API works, /console/ does not", error);
    }

    // HTTP API
    const routes: GatewayRoute[] = [];
    for (const fn of Object.values(config.functions)) {
      for (const event of fn.events) {
        if (event.kind !== "httpApi") continue;
        routes.push({
          routeKey: event.routeKey,
          fn: infoOf(fn),
          handler: (await handlerOf(fn)) as LambdaHandler,
        });
      }
    }
    const gateway: HttpGateway = await startHttpGateway({
      routes,
      port: options.port ?? 3000,
      host: options.host,
      region,
      log,
    });
    cleanup.push(() => gateway.close());

    // SQS event sources
    const pollers: SqsPoller[] = [];
    cleanup.push(async () => {
      await Promise.all(pollers.map((poller) => poller.stop()));
    });
    for (const fn of Object.values(config.functions)) {
      for (const event of fn.events) {
        if (event.kind !== "sqs" || !event.enabled) continue;
        // no sweeper: neither its schedule nor the chain of ticks a launch may start (tick.ts)
        if (options.sweeper === false && fn.events.some((e) => e.kind === "schedule")) continue;
        const arn = String(resolveIntrinsics(event.arn, resources));
        const queue = queueByArn(resources, arn);
        if (!queue)
          throw new Error(
            `the sqs event of ${fn.name} points at ${arn}, which serverless.yml does not create`,
          );
        const concurrency =
          typeof options.pollerConcurrency === "number"
            ? options.pollerConcurrency
            : (options.pollerConcurrency?.[fn.name] ?? event.maximumConcurrency ?? 4);
        pollers.push(
          startSqsPoller({
            sqs,
            queueUrl: queue.url,
            queueArn: queue.arn,
            region,
            fn: infoOf(fn),
            handler: (await handlerOf(fn)) as LambdaHandler<SQSEvent>,
            batchSize: options.batchSizes?.[fn.name] ?? event.batchSize,
            reportBatchItemFailures: event.functionResponseType === "ReportBatchItemFailures",
            concurrency,
            log,
          }),
        );
      }
    }

    // Schedules
    const schedules: Schedule[] = [];
    cleanup.push(async () => {
      await Promise.all(schedules.map((schedule) => schedule.stop()));
    });
    if (options.sweeper !== false) {
      for (const fn of Object.values(config.functions)) {
        let index = 0;
        for (const event of fn.events) {
          if (event.kind !== "schedule" || !event.enabled) continue;
          for (const expression of event.expressions) {
            index++;
            const rateMs = parseRate(expression);
            if (rateMs === undefined) {
              log.warn(`${fn.name}: schedule "${expression}" is not run locally (only rate(...) is)`);
              continue;
            }
            const intervalMs = options.scheduleIntervalMs ?? rateMs;
            const ruleName = `${config.service}-${stage}-${capitalize(fn.name)}EventsRuleSchedule${index}`;
            const handler = (await handlerOf(fn)) as LambdaHandler;
            const info = infoOf(fn);
            schedules.push(
              startSchedule(intervalMs, async () => {
                const scheduled = event.input ?? scheduledEvent(region, ruleName);
                try {
                  await invokeLambda(handler, scheduled, info);
                } catch (error) {
                  log.error(`${fn.name} (schedule) failed`, error);
                }
              }),
            );
            log.info(`${fn.name} runs every ${intervalMs / 1000} s (${expression})`);
          }
        }
      }
    }

    log.info(`local stack "${stage}" ready in ${Date.now() - startedAt} ms`);
    let stopping: Promise<void> | undefined;
    return {
      apiUrl: gateway.url,
      stage,
      region,
      endpoints,
      started,
      resources,
      env,
      config,
      clients: { dynamodb, sqs },
      chaos: chaos?.report,
      denied: iam?.denied ?? [],
      async invoke(functionName, event) {
        const fn = functionNamed(functionName);
        return await invokeLambda((await handlerOf(fn)) as LambdaHandler, event, infoOf(fn));
      },
      stop() {
        stopping ??= runCleanup().then(() => log.info(`local stack "${stage}" stopped`));
        return stopping;
      },
    };
  } catch (error) {
    await runCleanup();
    throw error;
  }
}

async function provideEndpoints(
  options: LocalStackOptions,
  dataDir: string | undefined,
  region: string,
  log: LocalLog,
  cleanup: (() => Promise<void>)[],
): Promise<{ endpoints: LocalEndpoints; started: { dynamodb: boolean; sqs: boolean } }> {
  if (options.endpoints) return { endpoints: options.endpoints, started: { dynamodb: false, sqs: false } };
  const shared = process.env.AWS_ENDPOINT_URL;
  if (shared) {
    log.info(`AWS_ENDPOINT_URL is set: using ${shared} for DynamoDB and SQS`);
    return { endpoints: { dynamodb: shared, sqs: shared }, started: { dynamodb: false, sqs: false } };
  }
  const [dynamodb, sqs] = await Promise.allSettled([
    startDynamoDbLocal({ dataDir, log }),
    startSqsEmulator({ dataDir, region, log }),
  ]);
  const running: (DynamoDbLocal | SqsEmulator)[] = [];
  if (dynamodb.status === "fulfilled") running.push(dynamodb.value);
  if (sqs.status === "fulfilled") running.push(sqs.value);
  for (const emulator of running) cleanup.push(() => emulator.stop());
  if (dynamodb.status === "rejected") throw dynamodb.reason;
  if (sqs.status === "rejected") throw sqs.reason;
  return {
    endpoints: {
      dynamodb: (dynamodb as PromiseFulfilledResult<DynamoDbLocal>).value.endpoint,
      sqs: (sqs as PromiseFulfilledResult<SqsEmulator>).value.endpoint,
    },
    started: { dynamodb: true, sqs: true },
  };
}

/** What the AWS SDK v3 in the in-process handlers reads at call time. */
function setAwsEnvironment(endpoints: LocalEndpoints, region: string): void {
  process.env.AWS_REGION = region;
  process.env.AWS_ACCESS_KEY_ID ||= "local";
  process.env.AWS_SECRET_ACCESS_KEY ||= "local";
  process.env.AWS_ENDPOINT_URL_DYNAMODB = endpoints.dynamodb;
  process.env.AWS_ENDPOINT_URL_SQS = endpoints.sqs;
}

/** `functions/api.handler` → the `handler` export of functions/api.ts (or .js, or functions/api/index.ts). */
async function importHandler(rootDir: string, fn: FunctionConfig): Promise<AnyLambdaHandler> {
  const dot = fn.handler.lastIndexOf(".");
  if (dot <= 0) throw new Error(`${fn.name}: handler "${fn.handler}" is not "path/module.export"`);
  const modulePath = fn.handler.slice(0, dot);
  const exportName = fn.handler.slice(dot + 1);
  const candidates = [".ts", ".mts", ".js", ".mjs"].flatMap((ext) => [
    join(rootDir, `${modulePath}${ext}`),
    join(rootDir, modulePath, `index${ext}`),
  ]);
  const file = candidates.find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
  if (!file)
    throw new Error(`${fn.name}: no module for handler "${fn.handler}" (looked for ${modulePath}.ts/.js)`);
  const module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const handler = module[exportName];
  if (typeof handler !== "function")
    throw new Error(`${fn.name}: ${file} does not export a function "${exportName}"`);
  return handler as AnyLambdaHandler;
}

/** `rate(1 minute)`, `rate(5 minutes)`, `rate(30 seconds)`, `rate(2 hours)`, `rate(1 day)` → ms. */
export function parseRate(expression: string): number | undefined {
  const match = /^rate\(\s*(\d+)\s+(second|minute|hour|day)s?\s*\)$/.exec(expression.trim());
  if (!match) return undefined;
  const unit = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 }[
    match[2] as string
  ] as number;
  return Number(match[1]) * unit;
}

/** The event EventBridge sends for a scheduled rule. */
export function scheduledEvent(region: string, ruleName: string, at: Date = new Date()): ScheduledEvent {
  return {
    version: "0",
    id: crypto.randomUUID(),
    "detail-type": "Scheduled Event",
    source: "aws.events",
    account: localAccountId,
    time: `${at.toISOString().slice(0, 19)}Z`,
    region,
    resources: [`arn:aws:events:${region}:${localAccountId}:rule/${ruleName}`],
    detail: {},
  };
}

interface Schedule {
  stop(): Promise<void>;
}

/** Runs `tick` every `intervalMs`; a tick still running when the next is due makes that one skip. */
/** Calls `tick` at once (EventBridge's first call comes within its rate of the deployment), then every `intervalMs`. */
function startSchedule(intervalMs: number, tick: () => Promise<void>): Schedule {
  let running: Promise<void> | undefined;
  let stopped = false;
  const fire = () => {
    if (running || stopped) return;
    running = tick().finally(() => {
      running = undefined;
    });
  };
  const timer = setInterval(fire, intervalMs);
  setImmediate(fire);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

function capitalize(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
