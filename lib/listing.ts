/**
 * Listing runs and workflows, from the `list` index (keys.ts): a run's index entry is written with
 * the run, in the same put, and never again (the index holds keys only: a projected status would
 * cost an index write at every change of it). A page reads the entries' keys from the index, then
 * their summaries from the table (BatchGetItem, eventually consistent, summary attributes only).
 * The index too is eventually consistent: a new run shows up a moment after its creation.
 *
 * Runs are kept per workflow, newest first by `{createdAt}#{runId}`. A page of one workflow's runs
 * is a Query of its partition; a page across workflows queries every workflow's partition and
 * merges them. A cursor is the sort key of the last entry handed out (and the filters it was made
 * for): the next page is everything below it.
 */
import { BatchGetCommand, type BatchGetCommandOutput, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { db } from "./clients";
import { config } from "./config";
import { WORKFLOW_NAME_PATTERN } from "./definition/schema";
import { InvalidQueryError, type Problem } from "./errors";
import { mapLimit } from "./map-limit";
import { backoff } from "./store/backoff";
import { type Key, keys } from "./store/keys";
import { queryAll } from "./store/query";
import { RUN_STATUSES, type RunStatus } from "./store/run-state";

export const LIST_INDEX = "list";
export const MAX_LIMIT = 100;
export const DEFAULT_LIMIT = 20;
/** Index entries one page may read per workflow, filtered out or not, before it answers with what it has. */
const EXAMINE_PER_PARTITION = 1000;
/** Workflow partitions queried at once for a page across workflows. */
const PARTITIONS_AT_ONCE = 8;

/** A run as listed: what tells runs apart, without input, output or tasks. */
export interface RunListEntry {
  runId: string;
  workflow: string;
  version: number;
  status: RunStatus;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  /** The code of the run's error, when it failed. */
  errorCode?: string;
}

export interface RunList {
  runs: RunListEntry[];
  /** Pass as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
}

export interface WorkflowListEntry {
  name: string;
  /** The latest version, and when it was registered. */
  version: number;
  createdAt?: string;
}

interface RunQuery {
  workflow?: string;
  status?: RunStatus;
  limit: number;
  /** Entries strictly below this sort key. */
  before?: string;
}

interface Cursor {
  before: string;
  workflow?: string;
  status?: RunStatus;
}

/**
 * `GET /runs?workflow=W&status=S&limit=N&cursor=C`: the query string checked, then one page. With
 * a status filter a page may hold fewer than `limit` runs (each workflow's partition is read for
 * at most `examinePerPartition` entries a page); only a missing `nextCursor` means the end.
 */
export async function listRuns(
  params: Record<string, string | undefined>,
  { examinePerPartition = EXAMINE_PER_PARTITION } = {},
): Promise<RunList> {
  const query = parseRunQuery(params);
  // the index's sort key of a workflow's pointer is its name: no read of the pointers needed
  const workflows = query.workflow
    ? [query.workflow]
    : (await workflowPointers()).map((p) => p.listSk as string);
  const pages = await mapLimit(workflows, PARTITIONS_AT_ONCE, (workflow) =>
    readPartition(keys.runsOf(workflow), query, examinePerPartition),
  );
  // everything at or above the highest point where an unfinished partition stopped has been read
  // in every partition; below it, a partition may hold entries not read yet
  const boundary = pages
    .map((p) => p.stoppedAt)
    .filter((s): s is string => s !== undefined)
    .sort()
    .at(-1);
  const candidates = pages
    .flatMap((p) => p.entries)
    .filter((e) => boundary === undefined || e.sk >= boundary)
    .sort((a, b) => (a.sk < b.sk ? 1 : a.sk > b.sk ? -1 : 0));
  const page = candidates.slice(0, query.limit);
  const more = candidates.length > page.length || boundary !== undefined;
  const last = page.length === query.limit ? page[page.length - 1]?.sk : boundary;
  return {
    runs: page.map((e) => e.run),
    ...(more && last
      ? { nextCursor: encodeCursor({ before: last, workflow: query.workflow, status: query.status }) }
      : {}),
  };
}

/** `GET /workflows`: every workflow, by name, with its latest version. */
export async function listWorkflows(): Promise<WorkflowListEntry[]> {
  const pointers = await workflowPointers();
  const items = await readSummaries(pointers.map(keyOf), ["name", "version", "createdAt"]);
  return items.map((item) => ({
    name: item.name as string,
    version: item.version as number,
    ...(item.createdAt ? { createdAt: item.createdAt as string } : {}),
  }));
}

/** The `list` index's entries of the workflows' latest pointers (keys only), by name. */
const workflowPointers = () =>
  queryAll({
    IndexName: LIST_INDEX,
    KeyConditionExpression: "listPk = :pk",
    ExpressionAttributeValues: { ":pk": keys.workflowsList },
  });

const RUN_SUMMARY = [
  "runId",
  "workflow",
  "version",
  "status",
  "createdAt",
  "startedAt",
  "endedAt",
  "error.code",
];

/**
 * The items under `found` (in that order; any gone meanwhile left out), only `attributes`: one
 * BatchGetItem per 100, eventually consistent, unprocessed keys asked again.
 */
async function readSummaries(found: Key[], attributes: string[]): Promise<Record<string, unknown>[]> {
  const names = Object.fromEntries(attributes.map((a, i) => [`#a${i}`, a.split(".")[0] as string]));
  const projection = [
    "pk",
    "sk",
    ...attributes.map((a, i) => [`#a${i}`, ...a.split(".").slice(1)].join(".")),
  ];
  const byKey = new Map<string, Record<string, unknown>>();
  for (let i = 0; i < found.length; i += 100) {
    let pending: Record<string, unknown>[] | undefined = found.slice(i, i + 100);
    for (let tries = 0; pending?.length; tries++) {
      // unprocessed keys (throttling): asked again after a jittered, growing pause
      if (tries > 0) await backoff(tries - 1);
      const answer: BatchGetCommandOutput = await db().send(
        new BatchGetCommand({
          RequestItems: {
            [config.tableName()]: {
              Keys: pending,
              ProjectionExpression: projection.join(", "),
              ExpressionAttributeNames: names,
            },
          },
        }),
      );
      for (const item of answer.Responses?.[config.tableName()] ?? [])
        byKey.set(`${item.pk}/${item.sk}`, item);
      pending = answer.UnprocessedKeys?.[config.tableName()]?.Keys;
    }
  }
  return found.map((k) => byKey.get(`${k.pk}/${k.sk}`)).filter((item) => item !== undefined);
}

const keyOf = (entry: Record<string, unknown>): Key => ({ pk: entry.pk as string, sk: entry.sk as string });

/**
 * Up to `limit` matching entries of one workflow's partition, newest first, below `before`; and
 * where the read stopped when the partition was not read to its end.
 */
async function readPartition(
  pk: string,
  query: RunQuery,
  examineAtMost: number,
): Promise<{ entries: { sk: string; run: RunListEntry }[]; stoppedAt?: string }> {
  const entries: { sk: string; run: RunListEntry }[] = [];
  let examined = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await db().send(
      new QueryCommand({
        TableName: config.tableName(),
        IndexName: LIST_INDEX,
        KeyConditionExpression: query.before ? "listPk = :pk AND listSk < :before" : "listPk = :pk",
        ExpressionAttributeValues: { ":pk": pk, ...(query.before ? { ":before": query.before } : {}) },
        ScanIndexForward: false,
        // without a filter every entry read is one handed out; with one, read in larger pages
        Limit: Math.min(query.status ? MAX_LIMIT : query.limit - entries.length, examineAtMost - examined),
        ExclusiveStartKey: startKey,
      }),
    );
    const found = page.Items ?? [];
    examined += found.length;
    const summaries = await readSummaries(found.map(keyOf), RUN_SUMMARY);
    const listSk = new Map(found.map((e) => [`${e.pk}/${e.sk}`, e.listSk as string]));
    for (const item of summaries) {
      if (query.status && item.status !== query.status) continue;
      entries.push({ sk: listSk.get(`${item.pk}/${item.sk}`) as string, run: entryOf(item) });
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey && entries.length < query.limit && examined < examineAtMost);
  return { entries, ...(startKey ? { stoppedAt: startKey.listSk as string } : {}) };
}

function entryOf(item: Record<string, unknown>): RunListEntry {
  const error = item.error as { code?: string } | undefined;
  return {
    runId: item.runId as string,
    workflow: item.workflow as string,
    version: item.version as number,
    status: item.status as RunStatus,
    createdAt: item.createdAt as string,
    ...(item.startedAt ? { startedAt: item.startedAt as string } : {}),
    ...(item.endedAt ? { endedAt: item.endedAt as string } : {}),
    ...(error?.code ? { errorCode: error.code } : {}),
  };
}

const QUERY_PARAMETERS = ["workflow", "status", "limit", "cursor"];

function parseRunQuery(params: Record<string, string | undefined>): RunQuery {
  const problems: Problem[] = Object.keys(params)
    .filter((name) => !QUERY_PARAMETERS.includes(name))
    .map((name) => ({ path: name, message: `unknown parameter (expected ${QUERY_PARAMETERS.join(", ")})` }));
  const { workflow, status, limit, cursor } = params;
  if (workflow !== undefined && !new RegExp(WORKFLOW_NAME_PATTERN).test(workflow))
    problems.push({ path: "workflow", message: "must be a workflow name" });
  if (status !== undefined && !RUN_STATUSES.includes(status as RunStatus))
    problems.push({ path: "status", message: `must be one of ${RUN_STATUSES.join(", ")}` });
  const n = limit === undefined ? DEFAULT_LIMIT : Number(limit);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT || (limit !== undefined && !/^\d+$/.test(limit)))
    problems.push({ path: "limit", message: `must be a whole number from 1 to ${MAX_LIMIT}` });
  let before: string | undefined;
  if (cursor !== undefined) {
    const decoded = decodeCursor(cursor);
    if (!decoded) problems.push({ path: "cursor", message: "is not a cursor this API handed out" });
    else if (decoded.workflow !== workflow || decoded.status !== status)
      problems.push({ path: "cursor", message: "belongs to a query with other filters" });
    else before = decoded.before;
  }
  if (problems.length > 0) throw new InvalidQueryError(problems);
  return { workflow, status: status as RunStatus | undefined, limit: n, before };
}

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString("base64url");
}

function decodeCursor(text: string): Cursor | undefined {
  try {
    const value = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as Partial<Cursor>;
    if (typeof value?.before !== "string" || value.before === "") return undefined;
    return value as Cursor;
  } catch {
    return undefined;
  }
}
