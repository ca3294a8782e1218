/**
 * An in-memory stand-in for the DynamoDB document client, for the deterministic simulation: it
 * serves the commands the engine sends (Get, Put, Update, Query on the table or a GSI, and
 * TransactWrite) with DynamoDB's semantics as the engine relies on them — conditions judged on
 * the current item, transactions all-or-nothing with per-item cancellation reasons
 * (`ReturnValuesOnConditionCheckFailure: ALL_OLD` included), the SDK's own exception classes,
 * and DynamoDB's refusals (two operations on one item in a transaction, more than 100 items,
 * unused placeholders, updating a key). Every call is atomic: the simulation decides the order.
 * `test/integration/memory-table.test.ts` runs the engine's own writes against it and against
 * DynamoDB Local and compares.
 */
import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { compile, ExpressionValidationError, type Item } from "./expressions";

export interface IndexSchema {
  hash: string;
  range?: string;
}

/** One call the table answered, and how: for replaying the same calls against DynamoDB Local. */
export interface TableCall {
  command: unknown;
  result?: unknown;
  error?: unknown;
}

/** One committed change of an item: `after` undefined would be a delete (the engine never deletes). */
export interface Write {
  table: string;
  key: Item;
  before?: Item;
  after: Item;
  /** The condition it was written under, if any. */
  condition?: string;
}

type TxItem = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

const copy = <T>(value: T): T => (value === undefined ? value : JSON.parse(JSON.stringify(value)));

export class MemoryTable {
  /** table → partition key → item id → item */
  private readonly tables = new Map<string, Map<unknown, Map<string, Item>>>();
  private readonly listeners: ((writes: Write[]) => void)[] = [];
  /** Successful write requests (a transaction counts once). */
  writeRequests = 0;

  /**
   * @param indexes Global secondary indexes, projecting keys only (as the engine's `sweep`).
   * @param weakened For mutation tests of the engine: condition expressions equal to one of these
   *   (or matching it, for a pattern: conditions built per call) are treated as always true, as if
   *   the engine did not have that guard.
   * @param log When given, every call answered is appended to it, with its answer.
   */
  constructor(
    private readonly keySchema: IndexSchema = { hash: "pk", range: "sk" },
    private readonly indexes: Record<string, IndexSchema> = {},
    private readonly weakened: Weakening[] = [],
    private readonly log?: TableCall[],
  ) {}

  /** Called with every committed change, in commit order (for invariant checks). */
  onCommit(listener: (writes: Write[]) => void): void {
    this.listeners.push(listener);
  }

  /** The items of `table` that `filter` keeps (copies), for snapshots and checks. */
  items(table: string, filter: (item: Item) => boolean = () => true): Item[] {
    return this.stored(table).filter(filter).map(copy);
  }

  /** The items of one partition that `filter` keeps (copies). */
  partition(table: string, hash: unknown, filter: (item: Item) => boolean = () => true): Item[] {
    return [...(this.tables.get(table)?.get(hash)?.values() ?? [])].filter(filter).map(copy);
  }

  get(table: string, key: Item): Item | undefined {
    return copy(this.storedItem(table, key));
  }

  /** The stored item itself: never changed in place (a write stores a new object), so safe to read. */
  private storedItem(table: string, key: Item): Item | undefined {
    return this.tables.get(table)?.get(key[this.keySchema.hash])?.get(this.id(key));
  }

  private stored(table: string): Item[] {
    return [...(this.tables.get(table)?.values() ?? [])].flatMap((partition) => [...partition.values()]);
  }

  async send(command: unknown): Promise<unknown> {
    try {
      const result = await this.answer(command);
      this.log?.push({ command, result: copy(result) });
      return result;
    } catch (error) {
      this.log?.push({ command, error });
      throw error;
    }
  }

  private async answer(command: unknown): Promise<unknown> {
    if (command instanceof GetCommand) {
      const { TableName, Key } = command.input;
      return { Item: this.get(TableName as string, Key as Item) };
    }
    if (command instanceof QueryCommand) return this.query(command.input);
    if (command instanceof PutCommand) return this.single({ Put: command.input } as TxItem);
    if (command instanceof UpdateCommand) return this.single({ Update: command.input } as TxItem);
    if (command instanceof TransactWriteCommand) return this.transact(command.input.TransactItems ?? []);
    throw new Error(`MemoryTable: unsupported command ${(command as object).constructor.name}`);
  }

  private id(key: Item): string {
    const range = this.keySchema.range;
    return JSON.stringify([key[this.keySchema.hash], range ? key[range] : null]);
  }

  private keyOf(item: Item): Item {
    const range = this.keySchema.range;
    return { [this.keySchema.hash]: item[this.keySchema.hash], ...(range ? { [range]: item[range] } : {}) };
  }

  private put(name: string, key: Item, item: Item): void {
    let table = this.tables.get(name);
    if (!table) {
      table = new Map();
      this.tables.set(name, table);
    }
    const hash = key[this.keySchema.hash];
    let partition = table.get(hash);
    if (!partition) {
      partition = new Map();
      table.set(hash, partition);
    }
    partition.set(this.id(key), item);
  }

  private query(input: QueryCommand["input"]) {
    const schema = input.IndexName ? this.indexes[input.IndexName] : this.keySchema;
    if (!schema) throw new ExpressionValidationError(`no index ${input.IndexName}`);
    const condition = compile(
      { keyCondition: input.KeyConditionExpression, condition: input.FilterExpression },
      { names: input.ExpressionAttributeNames, values: input.ExpressionAttributeValues },
    );
    const range = schema.range;
    const hash = input.ExpressionAttributeValues?.[":pk"];
    // the table's own key: read the one partition (the engine names its partition `:pk`)
    const candidates =
      !input.IndexName && hash !== undefined
        ? [
            ...(this.tables
              .get(input.TableName as string)
              ?.get(hash)
              ?.values() ?? []),
          ]
        : this.stored(input.TableName as string);
    const matches = candidates
      .filter((item) => item[schema.hash] !== undefined && (!range || item[range] !== undefined))
      .filter((item) => condition.holds(item))
      .sort((a, b) =>
        range ? Buffer.compare(Buffer.from(String(a[range])), Buffer.from(String(b[range]))) : 0,
      );
    if (input.ScanIndexForward === false) matches.reverse();
    const page = input.Limit ? matches.slice(0, input.Limit) : matches;
    // an index projects the table's keys and its own (KEYS_ONLY)
    const project = (item: Item): Item =>
      input.IndexName
        ? Object.fromEntries(
            [this.keySchema.hash, this.keySchema.range, schema.hash, schema.range]
              .filter((k): k is string => k !== undefined)
              .map((k) => [k, item[k]]),
          )
        : copy(item);
    return { Items: page.map(project), Count: page.length };
  }

  /** One Put or Update: the same as a transaction of one, with its own exception. */
  private async single(item: TxItem) {
    const [outcome] = this.judge([item]);
    if (outcome?.failed) {
      throw new ConditionalCheckFailedException({
        message: "The conditional request failed",
        $metadata: {},
        Item: outcome.returnOld && outcome.before ? marshall(outcome.before) : undefined,
      });
    }
    this.commit([outcome as Judged]);
    const returnNew = (item.Update as { ReturnValues?: string } | undefined)?.ReturnValues === "ALL_NEW";
    return returnNew ? { Attributes: copy(outcome?.after) } : {};
  }

  private async transact(items: TxItem[]) {
    if (items.length > 100) throw new ExpressionValidationError("a transaction takes at most 100 items");
    const judged = this.judge(items);
    const ids = judged.map((j) => `${j.table}/${this.id(j.key)}`);
    if (new Set(ids).size !== ids.length)
      throw new ExpressionValidationError(
        "Transaction request cannot include multiple operations on one item",
      );
    if (judged.some((j) => j.failed)) {
      throw new TransactionCanceledException({
        message: "Transaction cancelled",
        $metadata: {},
        CancellationReasons: judged.map((j) =>
          j.failed
            ? {
                Code: "ConditionalCheckFailed",
                Message: "The conditional request failed",
                Item: j.returnOld && j.before ? marshall(j.before) : undefined,
              }
            : { Code: "None" },
        ),
      });
    }
    this.commit(judged);
    return {};
  }

  /** Judges every item's condition against the current state, before anything is written. */
  private judge(items: TxItem[]): Judged[] {
    return items.map((entry) => {
      const op = entry.Put ?? entry.Update ?? entry.ConditionCheck ?? entry.Delete;
      if (!op || entry.Delete) throw new Error("MemoryTable: unsupported transaction item");
      const table = op.TableName as string;
      const key = entry.Put ? this.keyOf(entry.Put.Item as Item) : ((op as { Key: Item }).Key as Item);
      const before = this.storedItem(table, key);
      const compiled = compile(
        {
          condition: op.ConditionExpression,
          update: entry.Update?.UpdateExpression,
        },
        { names: op.ExpressionAttributeNames, values: op.ExpressionAttributeValues },
      );
      const condition = op.ConditionExpression;
      const weak =
        condition !== undefined &&
        this.weakened.some((w) =>
          typeof w === "string"
            ? w === condition
            : w instanceof RegExp
              ? w.test(condition)
              : typeof w === "function" && w(condition),
        );
      // a part of the guard taken away: judged by the weaker condition instead
      const rewrite = this.weakened.find(
        (w): w is ConditionRewrite =>
          typeof w === "object" &&
          !(w instanceof RegExp) &&
          condition !== undefined &&
          (typeof w.condition === "string" ? w.condition === condition : w.condition.test(condition)),
      );
      const judgedBy = rewrite
        ? weaker(typeof rewrite.as === "string" ? rewrite.as : rewrite.as(condition as string), op)
        : compiled;
      const failed = !weak && !judgedBy.holds(before);
      let after: Item | undefined;
      if (!failed && entry.Put) after = copy(entry.Put.Item as Item);
      if (!failed && entry.Update) after = copy(compiled.apply(before, key));
      const returnOld = op.ReturnValuesOnConditionCheckFailure === "ALL_OLD";
      return { table, key, before, after, failed, returnOld, condition };
    });
  }

  private commit(judged: Judged[]): void {
    const writes: Write[] = [];
    for (const j of judged) {
      if (!j.after) continue; // a condition check
      if (JSON.stringify(j.after).length > 400 * 1024)
        throw new ExpressionValidationError("item over 400 KB");
      this.put(j.table, j.key, j.after);
      writes.push({ table: j.table, key: j.key, before: j.before, after: j.after, condition: j.condition });
    }
    if (writes.length > 0) this.writeRequests++;
    for (const listener of this.listeners) listener(writes);
  }
}

/**
 * A guard taken away in part: a condition equal to `condition` (or matching it) is judged as `as`
 * (or as what `as` makes of it), its placeholders a subset.
 */
export interface ConditionRewrite {
  condition: string | RegExp;
  as: string | ((condition: string) => string);
}

/** What a mutation test takes away: a whole condition (exactly, by pattern, or as a test says), or a part of one. */
export type Weakening = string | RegExp | ((condition: string) => boolean) | ConditionRewrite;

/** The weaker condition, with only the placeholders it uses (DynamoDB refuses unused ones). */
function weaker(
  text: string,
  op: {
    ExpressionAttributeNames?: Record<string, string>;
    ExpressionAttributeValues?: Record<string, unknown>;
  },
) {
  const used = <T>(placeholders: Record<string, T> | undefined) =>
    placeholders &&
    Object.fromEntries(
      Object.entries(placeholders).filter(([k]) => new RegExp(`${k}(?![A-Za-z0-9_])`).test(text)),
    );
  return compile(
    { condition: text },
    { names: used(op.ExpressionAttributeNames), values: used(op.ExpressionAttributeValues) },
  );
}

interface Judged {
  table: string;
  key: Item;
  before?: Item;
  after?: Item;
  failed: boolean;
  returnOld: boolean;
  condition?: string;
}
