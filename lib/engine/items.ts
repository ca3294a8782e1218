/**
 * The items of a with-items task, written once each. When the task starts, every item's execution
 * is evaluated (its input from `item` and `index`) and the lot is stored in chunks: a few large
 * items of the run's partition (`CHUNK#...`), each holding the inputs of `chunk` consecutive items.
 * A fill that queues an item writes nothing of the item: it moves the parent's counters (its
 * `nextIndex`), and the item's task message carries its record, built from its chunk, and the time
 * it was queued (`QueuedItem`). The first claim of the message puts the record, running, with its
 * `TaskQueued` (at that time) and `TaskStarted` (claim.ts). So an item costs one write of its own
 * (its first claim), not two (its queueing in the fill's transaction, 2 units, and its claim), and
 * its share of a chunk's write units (a unit per KB of inputs). Chunks never change once written,
 * so a process keeps the ones it read.
 *
 * An item queued and not claimed yet (its message in flight, or lost with its sender) has no
 * record: every index below the parent's `nextIndex` was queued, no later than the items above it
 * and the last fill (`queuedBy`), so the look at the task sends the message of one whose record is
 * still missing well after that again (look.ts), as it does for a queued record.
 *
 * A started task whose parent has no `chunk` was started before items were chunked: its items were
 * put `pending` at its start, and its fills queue them from there.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { db } from "../clients";
import { config } from "../config";
import { mapLimit } from "../map-limit";
import type { QueuedItem } from "../queue";
import { IF_ABSENT, putIf } from "../store/conditional";
import { firstSortIdAt, timeOfSortId } from "../store/events";
import { keys } from "../store/keys";
import { queuedWithout } from "./dispatch";
import type { ErrorInfo, FanOutRecord, TaskRecord } from "./task-record";

/** A chunk holds at most this many items' inputs... */
const MAX_CHUNK_ITEMS = 100;
/** ...and at most this many bytes of them (a DynamoDB item is at most 400 KB). */
const MAX_CHUNK_BYTES = 300 * 1024;
/** Chunks written at once when a task starts. */
const CHUNK_WRITE_CONCURRENCY = 8;
/** Chunks a process keeps after reading them (at most MAX_CHUNK_BYTES each). */
const CACHED_CHUNKS = 32;

/** What every item of the task shares: its action, timeout, retry policy, limit. */
type Base = Omit<TaskRecord, "item" | "input" | "inputError" | "createdAt" | "sweepShard" | "sweepAt">;
/** What is an item's own: its input, or why it could not be evaluated. */
type Own = { input?: unknown; inputError?: ErrorInfo };

interface Chunk {
  base: Base;
  items: Own[];
}

const own = (record: TaskRecord): Own =>
  record.inputError ? { inputError: record.inputError } : { input: record.input ?? null };

/**
 * How many items a chunk holds: as many as fit MAX_CHUNK_BYTES given the largest item, at most
 * MAX_CHUNK_ITEMS. The count is part of the chunks' keys, so two starts of one task that raced
 * (and evaluated different sizes) never mix their chunks: the parent names the count it used.
 */
export function chunkSize(records: TaskRecord[]): number {
  const largest = Math.max(1, ...records.map((r) => Buffer.byteLength(JSON.stringify(own(r)))));
  return Math.max(1, Math.min(MAX_CHUNK_ITEMS, Math.floor(MAX_CHUNK_BYTES / largest)));
}

/** Writes the task's chunks of `size` items each (what exists is kept: a start that raced wrote it). */
export async function writeChunks(records: TaskRecord[], size: number): Promise<void> {
  const first = records[0];
  if (!first) return;
  const { runId, task } = first;
  const base = baseOf(first);
  const chunks = Array.from({ length: Math.ceil(records.length / size) }, (_, k) => k);
  await mapLimit(chunks, CHUNK_WRITE_CONCURRENCY, (k) =>
    putIf({
      TableName: config.tableName(),
      Item: {
        ...keys.chunk(runId, task, size, k),
        base,
        items: records.slice(k * size, (k + 1) * size).map(own),
      },
      // closes: a start that raced this one overwriting the chunk its parent (if it won) names
      ConditionExpression: IF_ABSENT,
    }),
  );
}

function baseOf(record: TaskRecord): Base {
  const {
    item: _i,
    input: _in,
    inputError: _e,
    createdAt: _c,
    sweepShard: _s,
    sweepAt: _a,
    ...base
  } = record;
  return base;
}

/** Chunks read, per DynamoDB client (a table of its own: the simulation starts a client per world). */
const caches = new WeakMap<object, Map<string, Chunk>>();

async function readChunk(runId: string, task: string, size: number, k: number): Promise<Chunk> {
  const key = keys.chunk(runId, task, size, k);
  const cache = caches.get(db()) ?? new Map<string, Chunk>();
  caches.set(db(), cache);
  const cached = cache.get(key.sk + key.pk);
  if (cached) return cached;
  const { Item } = await db().send(
    new GetCommand({ TableName: config.tableName(), Key: key, ConsistentRead: true }),
  );
  if (!Item) throw new Error(`${runId}/${task}: chunk ${k} of ${size} items is missing`);
  const chunk = { base: Item.base, items: Item.items } as Chunk;
  if (cache.size >= CACHED_CHUNKS) cache.delete(cache.keys().next().value as string);
  cache.set(key.sk + key.pk, chunk);
  return chunk;
}

/**
 * The execution records of items `indices` of a task started with chunks of `size`, as a fill
 * queues them (status and timestamps are the fill's to set).
 */
export async function itemRecords(
  parent: { runId: string; task: string; chunk: number },
  indices: number[],
): Promise<Map<number, Omit<TaskRecord, "createdAt">>> {
  const { runId, task, chunk: size } = parent;
  const needed = [...new Set(indices.map((i) => Math.floor(i / size)))];
  const chunks = new Map(
    await Promise.all(needed.map(async (k) => [k, await readChunk(runId, task, size, k)] as const)),
  );
  return new Map(
    indices.map((index) => {
      const chunk = chunks.get(Math.floor(index / size)) as Chunk;
      return [index, { ...chunk.base, ...(chunk.items[index % size] as Own), item: index }];
    }),
  );
}

/**
 * What the messages of items of a task started with chunks carry, for each item in `queuedAs`
 * (its index, and the sort id of its queueing).
 */
export async function queuedItems(
  parent: FanOutRecord & { chunk: number },
  queuedAs: Map<number, string>,
): Promise<Map<number, QueuedItem>> {
  const records = await itemRecords(parent, [...queuedAs.keys()]);
  return new Map(
    [...records].map(([index, record]) => [index, queuedWithout(record, queuedAs.get(index) as string)]),
  );
}

/**
 * The sort id of a `TaskQueued` no later than the queueing of the fresh item `index`, not claimed
 * yet (below the parent's `nextIndex`, no record), given the records of the items dispatched and
 * not counted (`written`). A fill takes fresh items in index order, so the item was queued no later
 * than any item above it: the earliest queueing of a written item above it, if any (a record's
 * `createdAt` is its queueing, which never changes: so this bound never moves later, and an item
 * whose message was lost falls due soon after the items queued with it); else the last fill's.
 */
export function queuedBy(p: FanOutRecord, index: number, written: TaskRecord[]): string {
  let earliest: string | undefined;
  for (const r of written)
    if ((r.item as number) > index && (earliest === undefined || r.createdAt < earliest))
      earliest = r.createdAt;
  const last = p.filledAt ?? firstSortIdAt(p.startedAt ?? p.createdAt);
  return earliest !== undefined && earliest < timeOfSortId(last) ? firstSortIdAt(earliest) : last;
}
