/**
 * Request metering for the benchmark (`npm run bench -- cost`): an AWS SDK middleware that asks
 * every DynamoDB call for `ReturnConsumedCapacity: TOTAL`, sums the read and write request units
 * it reports, and counts SQS requests. Nothing here runs unless `attachMeter` is called, so the
 * engine's code and its production clients are untouched.
 *
 * DynamoDB reports no consumed capacity on a failed conditional write or a cancelled
 * transaction. Those are counted apart and estimated by DynamoDB's documented minimum (a write of
 * an item up to 1 KB: 1 unit, 2 in a transaction), so the estimate is a floor.
 *
 * DynamoDB Local reports capacity for transactions, but not by DynamoDB's documented rule (2 write
 * units per item per started KB): it answers 4 units for a transaction of one, two or three small
 * items alike. Given `itemSize` (which reads an item back and measures it), the meter computes a
 * transaction's units itself, item by item, by that rule.
 *
 * Nor does DynamoDB Local bill writes to global secondary indexes, which DynamoDB bills as write
 * units too: an entry put or deleted costs 1 unit per started KB of the entry, an entry whose
 * index key changes 2 (a delete and a put), and an entry whose projected attributes change 1.
 * Given the table's `indexes`, the meter reads each written item before and after the write and
 * adds those units.
 */
import type { SQSClient } from "@aws-sdk/client-sqs";
import { db, sqs } from "./clients";

/** The DynamoDB operations that accept `ReturnConsumedCapacity` (low-level and document-client names). */
const CAPACITY_COMMANDS = new Set(
  [
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
    "Get",
    "Put",
    "Update",
    "Delete",
    "BatchGet",
    "BatchWrite",
    "TransactWrite",
    "TransactGet",
  ].map((name) => `${name}Command`),
);

const READ_COMMANDS = new Set(
  ["GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems", "Get", "BatchGet", "TransactGet"].map(
    (name) => `${name}Command`,
  ),
);

const TRANSACT_WRITE = new Set(["TransactWriteItemsCommand", "TransactWriteCommand"]);
const SINGLE_WRITE = new Set(
  ["PutItem", "UpdateItem", "DeleteItem", "Put", "Update", "Delete"].map((name) => `${name}Command`),
);

/** Write units of a single write: 1 per started KB of the larger of the item's two images. */
export function singleWriteUnits(before: number, after: number): number {
  return Math.max(1, Math.ceil(Math.max(before, after) / 1024));
}

/** The key of the item a PutItem, UpdateItem or DeleteItem input writes. */
function singleWriteKey(input: Record<string, unknown>): Record<string, unknown> {
  if (input.Key) return input.Key as Record<string, unknown>;
  const item = input.Item as Record<string, unknown>;
  return { pk: item.pk, sk: item.sk };
}

/** Per command: calls, units, failures and time spent waiting for the answer. */
export interface CommandFigures {
  calls: number;
  readUnits: number;
  writeUnits: number;
  /** The part of `writeUnits` spent on global secondary indexes. */
  indexWriteUnits: number;
  /** Failed conditional writes and cancelled transactions (their units are estimated). */
  failed: number;
  /** SQS receives that returned no message. */
  empty: number;
  /** Summed round-trip time, milliseconds. */
  ms: number;
}

interface ConsumedCapacityLike {
  CapacityUnits?: number;
  ReadCapacityUnits?: number;
  WriteCapacityUnits?: number;
}

type AttributeValueLike = {
  S?: string;
  N?: string;
  B?: Uint8Array;
  BOOL?: boolean;
  NULL?: boolean;
  M?: Record<string, AttributeValueLike>;
  L?: AttributeValueLike[];
  SS?: string[];
  NS?: string[];
  BS?: Uint8Array[];
};

const utf8 = (text: string) => Buffer.byteLength(text, "utf8");

/** Bytes of a number by DynamoDB's rule: 1 byte per two significant digits, plus 1. */
function numberSize(n: string): number {
  const digits = n
    .replace(/^[-+]/, "")
    .replace(/[eE].*$/, "")
    .replace(".", "")
    .replace(/^0+/, "")
    .replace(/0+$/, "");
  return Math.ceil(Math.max(1, digits.length) / 2) + 1;
}

/** Bytes of one attribute value, by DynamoDB's documented item-size rules. */
export function attributeValueSize(value: AttributeValueLike): number {
  if (value.S !== undefined) return utf8(value.S);
  if (value.N !== undefined) return numberSize(value.N);
  if (value.B !== undefined) return value.B.length;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.M !== undefined) {
    const entries = Object.entries(value.M);
    return 3 + entries.reduce((sum, [name, v]) => sum + 1 + utf8(name) + attributeValueSize(v), 0);
  }
  if (value.L !== undefined) return 3 + value.L.reduce((sum, v) => sum + 1 + attributeValueSize(v), 0);
  if (value.SS !== undefined) return value.SS.reduce((sum, v) => sum + utf8(v), 0);
  if (value.NS !== undefined) return value.NS.reduce((sum, v) => sum + numberSize(v), 0);
  if (value.BS !== undefined) return value.BS.reduce((sum, v) => sum + v.length, 0);
  return 0;
}

/** Bytes of an item (names and values), as DynamoDB counts them for capacity. */
export function itemSize(item: Record<string, AttributeValueLike>): number {
  return Object.entries(item).reduce((sum, [name, value]) => sum + utf8(name) + attributeValueSize(value), 0);
}

/** A global secondary index, as the meter needs it to bill its writes. */
export interface IndexSpec {
  name: string;
  /** Its hash and range key attributes. */
  keys: string[];
  projection: "ALL" | "KEYS_ONLY" | "INCLUDE";
  /** With INCLUDE: the attributes projected. */
  include?: string[];
}

type Item = Record<string, AttributeValueLike>;

/** DynamoDB's per-entry overhead in an index, bytes. */
const INDEX_ENTRY_OVERHEAD = 100;
const TABLE_KEYS = ["pk", "sk"];

/** The attributes of `item` an index entry holds (undefined: the item is not in the index). */
function indexEntry(index: IndexSpec, item: Item | undefined): Item | undefined {
  if (!item || !index.keys.every((k) => item[k] !== undefined)) return undefined;
  if (index.projection === "ALL") return item;
  const names = [
    ...TABLE_KEYS,
    ...index.keys,
    ...(index.projection === "INCLUDE" ? (index.include ?? []) : []),
  ];
  return Object.fromEntries(
    names.filter((n) => item[n] !== undefined).map((n) => [n, item[n] as AttributeValueLike]),
  );
}

/** Write units one item's write costs in `index`, given the item before and after it. */
export function indexWriteUnits(index: IndexSpec, before: Item | undefined, after: Item | undefined): number {
  const [was, is] = [indexEntry(index, before), indexEntry(index, after)];
  const units = (entry: Item) => Math.max(1, Math.ceil((itemSize(entry) + INDEX_ENTRY_OVERHEAD) / 1024));
  if (!was && !is) return 0;
  if (!was) return units(is as Item);
  if (!is) return units(was);
  const keyOf = (entry: Item) => JSON.stringify(index.keys.map((k) => entry[k]));
  if (keyOf(was) !== keyOf(is)) return units(was) + units(is);
  return JSON.stringify(was) === JSON.stringify(is) ? 0 : units(is);
}

/** Write units of a transaction whose items measure `sizes` bytes: 2 per item per started KB. */
export function transactionWriteUnits(sizes: number[]): number {
  return sizes.reduce((sum, size) => sum + 2 * Math.max(1, Math.ceil(size / 1024)), 0);
}

/** The key of each item a TransactWriteItems input writes or checks (document or marshalled form). */
export function transactionKeys(input: unknown): { key: Record<string, unknown>; writes: boolean }[] {
  const items = (input as { TransactItems?: Record<string, { Key?: unknown; Item?: unknown }>[] })
    ?.TransactItems;
  return (items ?? []).flatMap((entry) => {
    const op = entry.Put ?? entry.Update ?? entry.ConditionCheck ?? entry.Delete;
    if (!op) return [];
    const writes = entry.ConditionCheck === undefined;
    if (op.Key) return [{ key: op.Key as Record<string, unknown>, writes }];
    const item = op.Item as Record<string, unknown>;
    return [{ key: { pk: item.pk, sk: item.sk }, writes }];
  });
}

/** Read and write units of one `ConsumedCapacity` (an object, or an array for transactions and batches). */
export function unitsOf(
  consumed: ConsumedCapacityLike | ConsumedCapacityLike[] | undefined,
  isRead: boolean,
): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const c of [consumed ?? []].flat()) {
    if (c.ReadCapacityUnits !== undefined || c.WriteCapacityUnits !== undefined) {
      read += c.ReadCapacityUnits ?? 0;
      write += c.WriteCapacityUnits ?? 0;
    } else if (isRead) {
      read += c.CapacityUnits ?? 0;
    } else {
      write += c.CapacityUnits ?? 0;
    }
  }
  return { read, write };
}

/** Figures of one AWS command made under one label (the invocation it belongs to). */
export interface LabelledFigures extends CommandFigures {
  service: "dynamodb" | "sqs";
  /** Who made the call (see `Meter`'s `labelOf`); "-" when nobody said. */
  label: string;
  command: string;
}

export class Meter {
  private readonly figures = new Map<string, LabelledFigures>();
  /**
   * Per label: the time in which the meter itself was measuring items inside that caller's calls
   * (the union of those intervals: measurements running side by side count once).
   */
  private readonly overhead = new Map<string, { ms: number; active: number; since: number }>();

  /**
   * `labelOf` names the caller of the current call (an invocation, a poller), for a breakdown.
   * `readItem` reads the item stored under a key, marshalled (see the module's note on
   * transactions); `indexes` are the table's global secondary indexes, whose writes are billed.
   */
  constructor(
    private readonly labelOf: () => string | undefined = () => undefined,
    readonly readItem?: (key: Record<string, unknown>) => Promise<Item | undefined>,
    readonly indexes: IndexSpec[] = [],
  ) {}

  /** Write units of one item's write in every index, given the item before and after it. */
  indexUnits(before: Item | undefined, after: Item | undefined): number {
    return this.indexes.reduce((sum, index) => sum + indexWriteUnits(index, before, after), 0);
  }

  private entry(service: "dynamodb" | "sqs", command: string): LabelledFigures {
    const label = this.labelOf() ?? "-";
    const key = `${service}|${label}|${command}`;
    let figures = this.figures.get(key);
    if (!figures) {
      figures = {
        service,
        label,
        command,
        calls: 0,
        readUnits: 0,
        writeUnits: 0,
        indexWriteUnits: 0,
        failed: 0,
        empty: 0,
        ms: 0,
      };
      this.figures.set(key, figures);
    }
    return figures;
  }

  /**
   * Records one DynamoDB call from its output (or its error) and its input; `writeUnits`, when
   * given, replaces what the output reports.
   */
  recordDynamoDb(
    command: string,
    input: unknown,
    output: unknown,
    error: unknown,
    ms: number,
    writeUnits?: number,
    indexWriteUnits = 0,
  ): void {
    const figures = this.entry("dynamodb", command);
    figures.calls++;
    figures.ms += ms;
    if (error) {
      const name = (error as { name?: string }).name;
      if (name === "ConditionalCheckFailedException") {
        figures.failed++;
        figures.writeUnits += 1;
      } else if (name === "TransactionCanceledException") {
        figures.failed++;
        const items = (input as { TransactItems?: unknown[] } | undefined)?.TransactItems?.length ?? 1;
        figures.writeUnits += 2 * items;
      }
      return;
    }
    const units = unitsOf(
      (output as { ConsumedCapacity?: ConsumedCapacityLike | ConsumedCapacityLike[] } | undefined)
        ?.ConsumedCapacity,
      READ_COMMANDS.has(command),
    );
    figures.readUnits += units.read;
    figures.writeUnits += writeUnits ?? units.write;
    figures.indexWriteUnits += indexWriteUnits;
  }

  /** Records one SQS request (a receive that returned nothing is counted as empty). */
  recordSqs(command: string, output: unknown, ms: number): void {
    const figures = this.entry("sqs", command);
    figures.calls++;
    figures.ms += ms;
    if (command === "ReceiveMessageCommand" && !(output as { Messages?: unknown[] })?.Messages?.length) {
      figures.empty++;
    }
  }

  /**
   * Reads an item for the caller of the current call, its time kept apart: the measuring reads
   * are the meter's, not the caller's, and must not be billed as the caller's Lambda duration.
   */
  async measure(key: Record<string, unknown>): Promise<Item | undefined> {
    const label = this.labelOf() ?? "-";
    let spent = this.overhead.get(label);
    if (!spent) {
      spent = { ms: 0, active: 0, since: 0 };
      this.overhead.set(label, spent);
    }
    if (spent.active++ === 0) spent.since = performance.now();
    try {
      return this.readItem ? await this.readItem(key) : undefined;
    } finally {
      if (--spent.active === 0) spent.ms += performance.now() - spent.since;
    }
  }

  /** Milliseconds spent measuring items within the calls of `label` (to take off its durations). */
  overheadMs(label: string): number {
    return this.overhead.get(label)?.ms ?? 0;
  }

  /** Every (service, label, command) with its figures. */
  entries(): LabelledFigures[] {
    return [...this.figures.values()];
  }

  /** Sums over the entries whose label `include` accepts (all by default). */
  totals(include: (label: string) => boolean = () => true) {
    const totals = {
      readUnits: 0,
      writeUnits: 0,
      indexWriteUnits: 0,
      dynamodbCalls: 0,
      failedWrites: 0,
      sqsRequests: 0,
      emptyReceives: 0,
    };
    for (const f of this.figures.values()) {
      if (!include(f.label)) continue;
      if (f.service === "dynamodb") {
        totals.readUnits += f.readUnits;
        totals.writeUnits += f.writeUnits;
        totals.indexWriteUnits += f.indexWriteUnits;
        totals.dynamodbCalls += f.calls;
        totals.failedWrites += f.failed;
      } else {
        totals.sqsRequests += f.calls;
        totals.emptyReceives += f.empty;
      }
    }
    return totals;
  }

  reset(): void {
    this.figures.clear();
    this.overhead.clear();
  }
}

type Next = (args: { input: Record<string, unknown> }) => Promise<{ output: unknown }>;
type MiddlewareContext = { commandName?: string };

/** The middleware for one client: DynamoDB calls get `ReturnConsumedCapacity: TOTAL` and are summed. */
export function meterMiddleware(meter: Meter, service: "dynamodb" | "sqs") {
  return (next: Next, context: MiddlewareContext) => async (args: { input: Record<string, unknown> }) => {
    const command = String(context.commandName);
    const metered = service === "dynamodb" && CAPACITY_COMMANDS.has(command);
    if (metered) args.input.ReturnConsumedCapacity = "TOTAL";
    // DynamoDB Local bills neither a single write by the larger image nor index writes, as
    // DynamoDB does: the items written are read before and after
    const measured = metered && meter.readItem !== undefined;
    const single = measured && SINGLE_WRITE.has(command);
    const transaction = measured && TRANSACT_WRITE.has(command);
    const written = single
      ? [{ key: singleWriteKey(args.input), writes: true }]
      : transaction
        ? transactionKeys(args.input)
        : [];
    const before = await Promise.all(written.map(({ key }) => meter.measure(key)));
    const started = performance.now();
    try {
      const result = await next(args);
      const ms = performance.now() - started;
      if (service === "sqs") meter.recordSqs(command, result.output, ms);
      else if (metered) {
        let writeUnits: number | undefined;
        let indexUnits = 0;
        if (written.length > 0) {
          const after = await Promise.all(written.map(({ key }) => meter.measure(key)));
          const size = (item: Item | undefined) => (item ? itemSize(item) : 0);
          indexUnits = written.reduce(
            (sum, { writes }, i) => sum + (writes ? meter.indexUnits(before[i], after[i]) : 0),
            0,
          );
          writeUnits =
            indexUnits +
            (single
              ? singleWriteUnits(size(before[0]), size(after[0]))
              : transactionWriteUnits(after.map((item, i) => Math.max(size(item), size(before[i])))));
        }
        meter.recordDynamoDb(command, args.input, result.output, undefined, ms, writeUnits, indexUnits);
      }
      return result;
    } catch (error) {
      const ms = performance.now() - started;
      if (service === "sqs") meter.recordSqs(command, undefined, ms);
      else if (metered) meter.recordDynamoDb(command, args.input, undefined, error, ms);
      throw error;
    }
  };
}

const NAME = "onceflowMeter";

/**
 * Meters the engine's clients (and any other SQS clients given, such as the local stack's pollers,
 * which stand in for Lambda's event source). Returns a function that takes the middleware off.
 */
export function attachMeter(meter: Meter, otherSqsClients: SQSClient[] = []): () => void {
  const placement = { step: "initialize", name: NAME, override: true } as const;
  db().middlewareStack.add(meterMiddleware(meter, "dynamodb") as never, placement);
  const sqsClients = [sqs(), ...otherSqsClients];
  for (const client of sqsClients)
    client.middlewareStack.add(meterMiddleware(meter, "sqs") as never, placement);
  return () => {
    db().middlewareStack.remove(NAME);
    for (const client of sqsClients) client.middlewareStack.remove(NAME);
  };
}
