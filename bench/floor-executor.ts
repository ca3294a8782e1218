/**
 * The floor's own requests, timed on this machine (issue 12). The floor (`FLOORS` in prices.ts)
 * counts the fewest requests an exactly-once executor on DynamoDB, SQS FIFO and Lambda makes; this
 * makes just those requests, with no engine between them, through the engine's own clients
 * (lib/clients.ts), the same emulators, the same event source (infra/local/sqs-poller.ts) and as
 * many worker invocations as onceflow gets in the same scenario:
 * - a fan-out: each item put (conditional), its message sent ten to a batch, received, claimed and
 *   its result written (two conditional updates), deleted; the parent's count updated once per ten
 *   results; at most `concurrency` items out at once, refilled as results come in;
 * - runs of one task: each trigger a conditional update of its run and one message; the worker
 *   claims the task (a conditional put), sleeps the task's seconds, writes the result and ends the
 *   run (two conditional updates).
 * It is no executor: no retries, no recovery, no history, no reads, and a refill learns of results
 * in memory, for nothing. So nothing built on these primitives could be faster here: its figures
 * are an upper bound, measured in the same bench run, against which onceflow's are read.
 */
import { randomUUID } from "node:crypto";
import { CreateQueueCommand, SendMessageBatchCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { SQSEvent } from "aws-lambda";
import { startSqsPoller } from "../infra/local/sqs-poller";
import type { LocalStack } from "../infra/local/stack";
import { db, sqs } from "../lib/clients";
import { mapLimit } from "../lib/map-limit";
import { cpuMsSince, round } from "./figures";

/** Items put and sent together (SendMessageBatch takes ten). */
const CHUNK = 10;
/** Results counted by one update of the parent. */
const COUNT_EVERY = 10;

export interface FloorOptions {
  /** Concurrent worker invocations, as onceflow's scenario has. */
  workers: number;
  /** Records per worker invocation (default 1, as serverless.yml's worker). */
  tasksPerInvocation?: number;
}

/** What the floor's requests did: how long, and how many items or runs a second. */
export interface FloorRun {
  seconds: number;
  perSecond: number;
  /** CPU time of this process meanwhile (figures.ts `cpuMsSince`). */
  nodeCpuMs: number;
}

/**
 * Runs `body` with a FIFO queue of its own polled by `workers` invocations of `handle`; each
 * message in a group of its own, so the queue holds nothing back.
 */
async function withFloorQueue<T>(
  stack: LocalStack,
  options: FloorOptions,
  handle: (body: string) => Promise<void>,
  body: (queueUrl: string) => Promise<T>,
): Promise<T> {
  const name = `floor-${randomUUID().slice(0, 8)}.fifo`;
  const { QueueUrl } = await sqs().send(
    new CreateQueueCommand({ QueueName: name, Attributes: { FifoQueue: "true", VisibilityTimeout: "60" } }),
  );
  const queueUrl = QueueUrl as string;
  const poller = startSqsPoller({
    sqs: stack.clients.sqs,
    queueUrl,
    queueArn: `arn:aws:sqs:us-east-1:000000000000:${name}`,
    region: "us-east-1",
    fn: {
      service: "floor",
      stage: "bench",
      region: "us-east-1",
      name: "floor",
      timeout: 150,
      memorySize: 512,
    },
    handler: async (event: SQSEvent) => {
      for (const record of event.Records) await handle(record.body);
    },
    batchSize: options.tasksPerInvocation ?? 1,
    reportBatchItemFailures: false,
    concurrency: options.workers,
  });
  try {
    return await body(queueUrl);
  } finally {
    await poller.stop();
  }
}

/** A conditional move of an item's `status` from `from` to `to`; throws when it is not at `from`. */
function moveStatus(TableName: string, Key: Record<string, string>, from: string, to: string) {
  return db().send(
    new UpdateCommand({
      TableName,
      Key,
      UpdateExpression: "SET #s = :to",
      ConditionExpression: "#s = :from",
      ExpressionAttributeNames: { "#s": "status" },
      ExpressionAttributeValues: { ":to": to, ":from": from },
    }),
  );
}

/** A promise, with what resolves or rejects it. */
function latch() {
  let resolve: () => void = () => {};
  let reject: (error: unknown) => void = () => {};
  const promise = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  // a rejection before anyone awaits it (a worker failing while the triggers are still sent) is
  // not unhandled: the await below it sees it
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** A message whose body is `id`, in a group of its own, deduplicated by `scope` and `id`. */
const message = (scope: string, id: string) => ({
  MessageBody: id,
  MessageGroupId: `${scope}/${id}`,
  MessageDeduplicationId: `${scope}/${id}`,
});

/** One fan-out of `items` items at `concurrency`, on the floor's requests alone. */
export async function floorFanout(
  stack: LocalStack,
  options: FloorOptions & { items: number; concurrency: number },
): Promise<FloorRun & { pk: string; mostOut: number }> {
  const TableName = stack.env.TABLE_NAME as string;
  const pk = `FLOOR#${randomUUID()}`;
  const parent = { pk, sk: "PARENT" };
  let created = 0;
  let done = 0;
  let mostOut = 0;
  let countedSent = 0;
  let countedWritten = 0;
  const finished = latch();

  const worker = async (body: string) => {
    const Key = { pk, sk: `ITEM#${body}` };
    await moveStatus(TableName, Key, "queued", "running");
    await moveStatus(TableName, Key, "running", "succeeded");
    done++;
    fill();
    if (done % COUNT_EVERY !== 0 && done !== options.items) return;
    const count = done - countedSent;
    countedSent = done;
    await db().send(
      new UpdateCommand({
        TableName,
        Key: parent,
        UpdateExpression: "ADD #c :n",
        ConditionExpression: "#c <= :room",
        ExpressionAttributeNames: { "#c": "counted" },
        ExpressionAttributeValues: { ":n": count, ":room": options.items - count },
      }),
    );
    countedWritten += count;
    if (countedWritten === options.items) finished.resolve();
  };

  let queueUrl = "";
  const putChunk = async (first: number, size: number) => {
    const ids = Array.from({ length: size }, (_, i) => String(first + i));
    await Promise.all(
      ids.map((id) =>
        db().send(
          new PutCommand({
            TableName,
            Item: { pk, sk: `ITEM#${id}`, status: "queued", input: Number(id) },
            ConditionExpression: "attribute_not_exists(pk)",
          }),
        ),
      ),
    );
    await sqs().send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: ids.map((id) => ({ Id: id, ...message(pk, id) })),
      }),
    );
  };
  // as many chunks as there is room for under `concurrency`, each on its own
  const fill = () => {
    for (;;) {
      const size = Math.min(CHUNK, options.items - created);
      if (size === 0 || created - done + size > options.concurrency) return;
      putChunk(created, size).catch(finished.reject);
      created += size;
      mostOut = Math.max(mostOut, created - done);
    }
  };

  return withFloorQueue(
    stack,
    options,
    (body) => worker(body).catch(finished.reject),
    async (url) => {
      queueUrl = url;
      const started = performance.now();
      const cpu = process.cpuUsage();
      await db().send(
        new PutCommand({
          TableName,
          Item: { ...parent, counted: 0 },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
      fill();
      await finished.promise;
      const seconds = (performance.now() - started) / 1000;
      return {
        seconds: round(seconds, 3),
        perSecond: round(options.items / seconds, 1),
        nodeCpuMs: cpuMsSince(cpu),
        pk,
        mostOut,
      };
    },
  );
}

/**
 * `tasks` runs of one task of `taskSeconds`, created first (not timed), then triggered by
 * `clients` at once; timed from the first trigger to the last run's end, as `efficiency` is.
 */
export async function floorRuns(
  stack: LocalStack,
  options: FloorOptions & { tasks: number; taskSeconds: number; clients: number },
): Promise<FloorRun & { runIds: string[] }> {
  const TableName = stack.env.TABLE_NAME as string;
  const prefix = `FLOOR#${randomUUID()}`;
  const runIds = Array.from({ length: options.tasks }, (_, i) => `${prefix}#${i}`);
  await mapLimit(runIds, options.clients, (pk) =>
    db().send(
      new PutCommand({
        TableName,
        Item: { pk, sk: "RUN", status: "created" },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    ),
  );
  let ended = 0;
  let lastEnd = 0;
  const finished = latch();

  const worker = async (pk: string) => {
    await db().send(
      new PutCommand({
        TableName,
        Item: { pk, sk: "TASK", status: "running" },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, options.taskSeconds * 1000));
    await moveStatus(TableName, { pk, sk: "TASK" }, "running", "succeeded");
    await moveStatus(TableName, { pk, sk: "RUN" }, "running", "succeeded");
    lastEnd = performance.now();
    if (++ended === options.tasks) finished.resolve();
  };

  return withFloorQueue(
    stack,
    options,
    (pk) => worker(pk).catch(finished.reject),
    async (queueUrl) => {
      const started = performance.now();
      const cpu = process.cpuUsage();
      await mapLimit(runIds, options.clients, async (pk) => {
        await moveStatus(TableName, { pk, sk: "RUN" }, "created", "running");
        await sqs().send(new SendMessageCommand({ QueueUrl: queueUrl, ...message(prefix, pk) }));
      });
      await finished.promise;
      const seconds = (lastEnd - started) / 1000;
      return {
        seconds: round(seconds, 3),
        perSecond: round(options.tasks / seconds, 1),
        nodeCpuMs: cpuMsSince(cpu),
        runIds,
      };
    },
  );
}
