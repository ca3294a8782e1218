import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { db } from "../clients";
import { config } from "../config";
import type { ErrorInfo, TaskItem } from "../engine/task-record";
import type { RunStatus } from "../model/run-status";
import { type Key, keys } from "./keys";
import { queryAll } from "./query";

export { RUN_STATUSES, type RunStatus } from "../model/run-status";

export interface RunRecord {
  runId: string;
  workflow: string;
  version: number;
  status: RunStatus;
  input: unknown;
  output?: unknown;
  error?: ErrorInfo & { task?: string };
  idempotencyKey?: string;
  /** The evaluated `concurrencyKey`: the run holds, or waits for, that key's lock. */
  concurrencyKey?: string;
  /** A `waiting` run starts when it gets the lock (created with `start`), or becomes `pending`. */
  startOnLock?: boolean;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  /** How many times the run was redriven, and when last. */
  redriveCount?: number;
  redrivenAt?: string;
  /** From the workflow's `timeoutSeconds`: past it the run fails with `RunTimedOut`. */
  deadline?: string;
  /** Sparse index for the sweeper while the run is running (deadline, or a periodic re-check). */
  sweepShard?: string;
  sweepAt?: string;
  /**
   * Plain tasks queued without their records, by the sort id of their `TaskQueued`: a start task
   * queued with the run's start, a successor queued by `advance` (dispatch.ts). Its first claim
   * puts its record (claim.ts); an entry whose task has a record means nothing more.
   */
  queued?: Record<string, string>;
}

/** One item by its key, strongly consistent (every decision of the engine reads the latest write). */
export async function readItem<T>(key: Key): Promise<T | undefined> {
  const { Item } = await db().send(
    new GetCommand({ TableName: config.tableName(), Key: key, ConsistentRead: true }),
  );
  return Item as T | undefined;
}

export function readRun(runId: string): Promise<RunRecord | undefined> {
  return readItem<RunRecord>(keys.run(runId));
}

/** Every item of the run's partition whose sort key starts with `prefix`, strongly consistent, all pages. */
export function queryRunItems(runId: string, prefix: string): Promise<Record<string, unknown>[]> {
  return queryPartition(runId, { condition: "begins_with(sk, :sk)", values: { ":sk": prefix } });
}

/** Every item of the run's partition whose sort key is between `from` and `to`, strongly consistent, all pages. */
export function queryRunRange(runId: string, from: string, to: string): Promise<Record<string, unknown>[]> {
  return queryPartition(runId, { condition: "sk BETWEEN :sk AND :to", values: { ":sk": from, ":to": to } });
}

/** Which attributes of an item a query returns (it is billed for the whole item all the same). */
export interface Projection {
  expression: string;
  names: Record<string, string>;
}

/** Every item of the run's partition, strongly consistent, all pages; `projection` the attributes wanted. */
export function queryRunPartition(
  runId: string,
  projection?: Projection,
): Promise<Record<string, unknown>[]> {
  return queryPartition(runId, { projection });
}

/**
 * Every item of the run's partition whose sort key meets `condition` (all of them without one),
 * strongly consistent, all pages.
 */
async function queryPartition(
  runId: string,
  {
    condition,
    values = {},
    projection,
  }: { condition?: string; values?: Record<string, string>; projection?: Projection },
): Promise<Record<string, unknown>[]> {
  return queryAll({
    KeyConditionExpression: condition ? `pk = :pk AND ${condition}` : "pk = :pk",
    ExpressionAttributeValues: { ":pk": keys.runPartition(runId), ...values },
    ProjectionExpression: projection?.expression,
    ExpressionAttributeNames: projection?.names,
    ConsistentRead: true,
  });
}

/**
 * The run and every execution of it, from one strongly consistent Query: in the run's partition
 * the sort keys `RUN` and `TASK#...` come after `EVT#...` and `ITEM#...`, so `sk >= "RUN"` is
 * exactly the run and its tasks.
 */
export async function readRunState(runId: string): Promise<{ run?: RunRecord; tasks: TaskItem[] }> {
  const items = await queryPartition(runId, {
    condition: "sk >= :sk",
    values: { ":sk": keys.run(runId).sk },
  });
  const [first, ...rest] = items;
  if (first?.sk !== keys.run(runId).sk) return { tasks: items as unknown as TaskItem[] };
  return { run: first as unknown as RunRecord, tasks: rest as unknown as TaskItem[] };
}

/** Every execution of the run, from one strongly consistent Query of its partition. */
export async function readTasks(runId: string): Promise<TaskItem[]> {
  return (await queryRunItems(runId, keys.taskPrefix)) as unknown as TaskItem[];
}
