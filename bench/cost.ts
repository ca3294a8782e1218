/**
 * Scenario `cost`: what one task execution costs in AWS requests, metered on the engine's own
 * clients (lib/metering.ts): DynamoDB read and write request units as DynamoDB Local reports them
 * (`ReturnConsumedCapacity: TOTAL`), SQS requests (the engine's sends and the event source's
 * receives and deletes; empty receives are idle polling and reported apart), Lambda invocations and
 * their GB-seconds, and HTTP API requests. Two shapes: the fan-out of `fanout` (N items and a
 * successor), `plain` runs of one task, runs of a `chain of 5` plain tasks (as many tasks as the
 * plain runs), and runs of one task whose output is 10 KB (a fifth as many). The bench's own reads (GET /runs...) are left out.
 */
import {
  type AttributeValue,
  DescribeTableCommand,
  type DynamoDBClient,
  GetItemCommand,
} from "@aws-sdk/client-dynamodb";
import { attachMeter, type IndexSpec, type LabelledFigures, Meter } from "../lib/metering";
import { executions } from "./actions";
import { fanoutOnce, noopLimit, registerFanout } from "./fanout";
import { round } from "./figures";
import {
  FLOORS,
  type PerTask,
  PRICES,
  stepFunctionsStandardUsdPerMillion,
  usdPerMillionTasks,
} from "./prices";
import {
  type BenchStack,
  type Emulators,
  invocationLabel,
  mapLimit,
  startBenchStack,
  untilExecuted,
  waitForRuns,
} from "./setup";

export interface CostOptions {
  items: number;
  concurrency: number;
  plainRuns: number;
  workers: number;
  /** Tasks per worker invocation (default: serverless.yml's batchSize). */
  tasksPerInvocation?: number;
  /** A concurrency limit on `bench.noop`, the action of both shapes; none when absent. */
  maxRunning?: number;
}

/** Tasks in the `chain` shape: plain tasks one after the other, each started by the last one's completion. */
const CHAIN_LENGTH = 5;

/** The output of the `plain, 10 KB output` shape's task. */
const LARGE_OUTPUT_BYTES = 10 * 1024;

/** Calls made for the benchmark itself, not by the workflow: registering, polling runs. */
const excluded = (label: string) => label === "api GET" || label === "api PUT";

/** How long after the last run ended the event source may still be deleting its last messages. */
const SETTLE_MS = 1500;

export interface ShapeCost extends PerTask {
  shape: string;
  /** The part of writeUnits spent on the table's global secondary indexes. */
  indexWriteUnits: number;
  tasks: number;
  dynamodbCallsPerTask: number;
  failedWritesPerTask: number;
  emptyReceives: number;
  usdPerMillionTasks: number;
  /** The floor of the shape on these primitives (prices.ts `FLOORS`), in USD per million tasks. */
  floorUsdPerMillionTasks: number;
  usdPerMillionTasksByService: ReturnType<typeof usdPerMillionTasks>;
  stepFunctionsStandardUsdPerMillion: number;
  /** Per function: invocations and mean duration, per task; mean queue wait of their messages. */
  functions: Record<string, { invocationsPerTask: number; meanMs: number; meanQueueWaitMs: number }>;
  /** Per caller and command: calls and units per task, mean round trip. */
  calls: {
    label: string;
    command: string;
    callsPerTask: number;
    readUnitsPerTask: number;
    writeUnitsPerTask: number;
    /** The part of writeUnitsPerTask spent on the table's indexes. */
    indexWriteUnitsPerTask: number;
    meanMs: number;
  }[];
}

async function measure(
  bench: BenchStack,
  meter: Meter,
  shape: string,
  floor: PerTask,
  tasks: number,
  otherStates: number,
  run: () => Promise<void>,
): Promise<ShapeCost> {
  meter.reset();
  bench.invocations.reset();
  await run();
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const totals = meter.totals((label) => !excluded(label));
  const memory = (fn: string) => bench.stack.config.functions[fn]?.memorySize ?? 1024;
  let lambdaInvocations = 0;
  let lambdaGbSeconds = 0;
  let apiRequests = 0;
  const functions: ShapeCost["functions"] = {};
  for (const [label, f] of bench.invocations.byFunction) {
    if (excluded(label)) continue;
    const fn = label.split(" ")[0] as string;
    lambdaInvocations += f.invocations;
    // the meter's own reads (measuring written items) ran inside the invocation: not its duration
    const ms = Math.max(0, f.ms - meter.overheadMs(label));
    lambdaGbSeconds += (ms / 1000) * (memory(fn) / 1024);
    if (fn === "api") apiRequests += f.invocations;
    functions[label] = {
      invocationsPerTask: round(f.invocations / tasks, 3),
      meanMs: round(Math.max(0, f.ms - meter.overheadMs(label)) / f.invocations, 1),
      meanQueueWaitMs: f.firstDeliveries ? round(f.queueWaitMs / f.firstDeliveries, 1) : 0,
    };
  }
  const perTask: PerTask = {
    readUnits: round(totals.readUnits / tasks, 2),
    writeUnits: round(totals.writeUnits / tasks, 2),
    sqsRequests: round((totals.sqsRequests - totals.emptyReceives) / tasks, 2),
    lambdaInvocations: round(lambdaInvocations / tasks, 3),
    lambdaGbSeconds: round(lambdaGbSeconds / tasks, 5),
    apiRequests: round(apiRequests / tasks, 3),
  };
  const usd = usdPerMillionTasks(perTask);
  const calls = meter
    .entries()
    .filter((e: LabelledFigures) => !excluded(e.label))
    .sort((a, b) => b.calls - a.calls)
    .map((e) => ({
      label: e.label === "-" ? "event source" : e.label,
      command: e.command.replace(/Command$/, ""),
      callsPerTask: round((e.calls - e.empty) / tasks, 3),
      readUnitsPerTask: round(e.readUnits / tasks, 2),
      writeUnitsPerTask: round(e.writeUnits / tasks, 2),
      indexWriteUnitsPerTask: round(e.indexWriteUnits / tasks, 2),
      meanMs: round(e.ms / e.calls, 1),
    }));
  return {
    shape,
    tasks,
    ...perTask,
    indexWriteUnits: round(totals.indexWriteUnits / tasks, 2),
    dynamodbCallsPerTask: round(totals.dynamodbCalls / tasks, 2),
    failedWritesPerTask: round(totals.failedWrites / tasks, 3),
    emptyReceives: totals.emptyReceives,
    usdPerMillionTasks: round(usd.total, 2),
    floorUsdPerMillionTasks: round(usdPerMillionTasks(floor).total, 2),
    usdPerMillionTasksByService: {
      dynamodb: round(usd.dynamodb, 2),
      sqs: round(usd.sqs, 2),
      lambda: round(usd.lambda, 2),
      api: round(usd.api, 2),
      total: round(usd.total, 2),
    },
    stepFunctionsStandardUsdPerMillion: round(stepFunctionsStandardUsdPerMillion(tasks, otherStates), 2),
    functions,
    calls,
  };
}

export async function runCost(
  emulators: Emulators,
  options: CostOptions,
  log: (line: string) => void,
): Promise<{ prices: typeof PRICES; shapes: ShapeCost[] }> {
  const bench = await startBenchStack(emulators, {
    workers: options.workers,
    tasksPerInvocation: options.tasksPerInvocation,
  });
  // written items are read back (before and after) with the stack's own (unmetered) client
  const table = bench.stack.env.TABLE_NAME as string;
  const readBack = async (key: Record<string, unknown>) => {
    const Key = Object.fromEntries(
      Object.entries(key).map(([name, value]) => [name, typeof value === "string" ? { S: value } : value]),
    ) as Record<string, AttributeValue>;
    const { Item } = await bench.stack.clients.dynamodb.send(
      new GetItemCommand({ TableName: table, Key, ConsistentRead: true }),
    );
    return Item;
  };
  const meter = new Meter(() => invocationLabel.getStore(), readBack, await indexesOf(bench, table));
  const detach = attachMeter(meter, [bench.stack.clients.sqs]);
  try {
    await registerFanout(bench, options.concurrency, options.maxRunning);
    await bench.client.putWorkflow("bench-plain", {
      name: "bench-plain",
      ...noopLimit(options.maxRunning),
      tasks: { only: { action: "bench.noop" } },
    });
    const chain = Object.fromEntries(
      Array.from({ length: CHAIN_LENGTH }, (_, i) => [
        `t${i + 1}`,
        {
          action: "bench.noop",
          ...(i + 1 < CHAIN_LENGTH ? { next: [{ when: "succeeded", do: [`t${i + 2}`] }] } : {}),
        },
      ]),
    );
    await bench.client.putWorkflow("bench-chain", {
      name: "bench-chain",
      ...noopLimit(options.maxRunning),
      tasks: chain,
    });
    const shapes: ShapeCost[] = [];
    // Step Functions: a Map state around the items' Task state, then the successor's Task state
    shapes.push(
      await measure(
        bench,
        meter,
        `fanout ${options.items}`,
        FLOORS.fanout,
        options.items + 1,
        1,
        async () => {
          await fanoutOnce(bench, options.items);
        },
      ),
    );
    await bench.client.putWorkflow("bench-large", {
      name: "bench-large",
      tasks: { only: { action: "bench.large", input: { bytes: LARGE_OUTPUT_BYTES } } },
    });
    /** `runs` runs of `workflow` (`tasks` tasks each), created 8 at a time, until each has ended. */
    const runsOf = (workflow: string, runs: number, tasks: number) => async () => {
      const before = executions.total;
      const runIds = await mapLimit(
        Array.from({ length: runs }),
        8,
        async () => (await bench.client.createRun(workflow)).runId,
      );
      // not asked about through the API while they run: that would lengthen the invocations
      // whose durations Lambda is priced from
      await untilExecuted(before + runs * tasks, 600_000);
      await waitForRuns(bench, runIds, 600_000);
    };
    const fewer = Math.max(1, Math.round(options.plainRuns / CHAIN_LENGTH));
    shapes.push(
      await measure(
        bench,
        meter,
        "plain",
        FLOORS.plain,
        options.plainRuns,
        0,
        runsOf("bench-plain", options.plainRuns, 1),
      ),
      await measure(
        bench,
        meter,
        `chain of ${CHAIN_LENGTH}`,
        FLOORS.chain,
        fewer * CHAIN_LENGTH,
        0,
        runsOf("bench-chain", fewer, CHAIN_LENGTH),
      ),
      await measure(
        bench,
        meter,
        "plain, 10 KB output",
        FLOORS.large,
        fewer,
        0,
        runsOf("bench-large", fewer, 1),
      ),
    );
    for (const shape of shapes) {
      log(
        `cost ${shape.shape}: per task ${shape.readUnits} RRU, ${shape.writeUnits} WRU, ` +
          `${shape.sqsRequests} SQS requests, ${shape.lambdaInvocations} Lambda invocations: ` +
          `$${shape.usdPerMillionTasks} per million (floor $${shape.floorUsdPerMillionTasks}, Step Functions Standard $${shape.stepFunctionsStandardUsdPerMillion})`,
      );
    }
    return { prices: PRICES, shapes };
  } finally {
    detach();
    await bench.stop();
  }
}

/** The table's global secondary indexes, whose writes the meter bills (DynamoDB Local does not). */
async function indexesOf(
  bench: { stack: { clients: { dynamodb: DynamoDBClient } } },
  table: string,
): Promise<IndexSpec[]> {
  const { Table } = await bench.stack.clients.dynamodb.send(new DescribeTableCommand({ TableName: table }));
  return (Table?.GlobalSecondaryIndexes ?? []).map((index) => ({
    name: index.IndexName as string,
    keys: (index.KeySchema ?? []).map((k) => k.AttributeName as string),
    projection: (index.Projection?.ProjectionType ?? "ALL") as IndexSpec["projection"],
    include: index.Projection?.NonKeyAttributes ?? [],
  }));
}
