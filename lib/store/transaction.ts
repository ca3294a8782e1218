import { randomBytes } from "node:crypto";
import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import {
  DeleteCommand,
  PutCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { db } from "../clients";
import { lostRace, retryOnContention } from "./contention";
import { type HistoryEvent, isHistoryEvent, LOG_ATTRIBUTE, type LogEntry } from "./events";
import type { Key } from "./keys";

export type TxItem = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

/** What a transition writes: conditional writes, and the history events they record. */
export type Write = TxItem | HistoryEvent;

/** Why one item of a cancelled transaction failed, with the item as it was (ALL_OLD), by its key. */
export interface TxReason {
  code: string;
  item?: Record<string, unknown>;
  /** The key of the transaction item it is about (a transaction writes an item at most once). */
  key: Key;
}

/** `item`: the item as written, for a single update that asked for it (`ReturnValues: ALL_NEW`). */
export type TxOutcome = { ok: true; item?: Record<string, unknown> } | { ok: false; reasons: TxReason[] };

/** The attribute a single write stamps with its own token, to know its own write again (below). */
export const WRITE_TOKEN_ATTRIBUTE = "w";

/**
 * Writes one transition of onceflow, with the history events it records, all or nothing.
 *
 * - Each event is appended to the log of the item it belongs to, in that item's own write (see
 *   events.ts), so it costs no item of its own.
 * - A transition of one item is one conditional PutItem/UpdateItem/DeleteItem (1 unit per KB);
 *   only a transition of several items is a TransactWriteItems (2 units per item per KB).
 * - A failed condition is an answer, not an error: the caller gets every item's reason and the
 *   item as it was (always for a single write; for items of a transaction written with
 *   `ReturnValuesOnConditionCheckFailure: ALL_OLD`), the winner's state without a second read.
 * - `TransactionConflict` (another transaction held one of the items) means nothing was written
 *   and no condition was judged, so the transaction is simply tried again (`retryOnContention`,
 *   with its backoff); a conflict on every try is answered as the outcome, like a refusal.
 * - A retry of the SDK after a lost response must not turn a write that happened into a failed
 *   condition: a transaction's retries share one `ClientRequestToken`; a single write stamps the
 *   item with a token of its own, and a failed condition on an item carrying that token is the
 *   write's own success coming back.
 */
export async function transact(writes: Write[]): Promise<TxOutcome> {
  const items = withHistory(writes);
  if (items.length === 1 && !items[0]?.ConditionCheck) return writeOne(items[0] as TxItem);
  if (items.some((i) => i.Update && "ReturnValues" in i.Update))
    throw new Error("transact: ReturnValues is for a single update only");
  let conflicted: TxOutcome | undefined;
  return retryOnContention<TxOutcome, TxOutcome>(
    "write a transaction",
    async () => {
      try {
        await db().send(new TransactWriteCommand({ TransactItems: items }));
        return { ok: true };
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const reasons: TxReason[] = (error.CancellationReasons ?? []).map((r, k) => ({
          code: r.Code ?? "None",
          item: r.Item ? unmarshall(r.Item) : undefined,
          key: keyOf(items[k] as TxItem),
        }));
        const failed = reasons.filter((r) => r.code !== "None");
        const conflictOnly = failed.length > 0 && failed.every((r) => r.code === "TransactionConflict");
        if (conflictOnly) {
          conflicted = { ok: false, reasons };
          return lostRace(reasons);
        }
        if (failed.some((r) => r.code !== "ConditionalCheckFailed" && r.code !== "TransactionConflict")) {
          throw error;
        }
        return { ok: false, reasons };
      }
    },
    // a conflict on every try is answered like a refusal, never thrown: each caller reads again and
    // decides (its own retryOnContention, usually)
    { giveUp: () => conflicted as TxOutcome },
  );
}

/** One conditional write, answered in the shape of a transaction of one. */
async function writeOne(item: TxItem): Promise<TxOutcome> {
  const token = randomBytes(8).toString("hex");
  try {
    if (item.Put) {
      const { Item, ...rest } = item.Put;
      await db().send(
        new PutCommand({
          ...rest,
          Item: { ...Item, [WRITE_TOKEN_ATTRIBUTE]: token },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
    } else if (item.Update) {
      const { UpdateExpression, ExpressionAttributeNames, ExpressionAttributeValues, ...rest } = item.Update;
      const { Attributes } = await db().send(
        new UpdateCommand({
          ...rest,
          UpdateExpression: addSet(UpdateExpression as string, "#wToken = :wToken"),
          ExpressionAttributeNames: { ...ExpressionAttributeNames, "#wToken": WRITE_TOKEN_ATTRIBUTE },
          ExpressionAttributeValues: { ...ExpressionAttributeValues, ":wToken": token },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      return Attributes ? { ok: true, item: Attributes } : { ok: true };
    } else if (item.Delete) {
      await db().send(new DeleteCommand({ ...item.Delete, ReturnValuesOnConditionCheckFailure: "ALL_OLD" }));
    } else {
      throw new Error("transact: a single write must be a Put, an Update or a Delete");
    }
    return { ok: true };
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    const old = error.Item ? unmarshall(error.Item) : undefined;
    // the SDK sent the write again after its response was lost: the item is already ours
    if (old?.[WRITE_TOKEN_ATTRIBUTE] === token) return { ok: true };
    return { ok: false, reasons: [{ code: "ConditionalCheckFailed", item: old, key: keyOf(item) }] };
  }
}

/** `assignment` added to the SET clause of an update expression (or as one, when it has none). */
function addSet(expression: string, assignment: string): string {
  const set = /(^|\s)SET\s/i.exec(expression);
  if (!set) return `SET ${assignment} ${expression}`.trim();
  const at = set.index + set[0].length;
  return `${expression.slice(0, at)}${assignment}, ${expression.slice(at)}`;
}

const sameKey = (a: Record<string, unknown> | undefined, b: Key) => a?.pk === b.pk && a?.sk === b.sk;

/** The key of the item a transaction item writes or checks. */
export function keyOf(item: TxItem): Key {
  const key = (item.Put?.Item ?? item.Update?.Key ?? item.Delete?.Key ?? item.ConditionCheck?.Key) as Key;
  return { pk: key.pk, sk: key.sk };
}

/**
 * Why the write of the item at `key` failed in a refused transaction (or single write): its
 * reason, named by the item rather than by its place in the transaction. `ConditionalCheckFailed`
 * means its own condition failed; `None`, that it held and another item's failed.
 */
export function reasonAt(outcome: { reasons: TxReason[] }, key: Key): TxReason | undefined {
  return outcome.reasons.find((r) => sameKey(r.key, key));
}

/** Whether the item at `key` is one whose condition failed in a refused transaction (or single write). */
export const refusedAt = (outcome: { reasons: TxReason[] }, key: Key): boolean =>
  reasonAt(outcome, key)?.code === "ConditionalCheckFailed";

/**
 * The transaction items with each history event appended to the log of the item it belongs to:
 * into a Put's item, or as a `list_append` in an Update. An event whose item is not written in the
 * same call is a bug of the engine (it would record a transition that did not happen).
 */
export function withHistory(writes: Write[]): TxItem[] {
  const items = writes.filter((w): w is TxItem => !isHistoryEvent(w));
  const logs = new Map<TxItem, LogEntry[]>();
  for (const w of writes) {
    if (!isHistoryEvent(w)) continue;
    const { key, entry } = w.history;
    const target = items.find((i) => sameKey(i.Put?.Item, key) || sameKey(i.Update?.Key, key));
    if (!target) throw new Error(`history event ${entry.t} for ${key.pk}/${key.sk} has no write of its item`);
    logs.set(target, [...(logs.get(target) ?? []), entry]);
  }
  return items.map((item) => {
    const entries = logs.get(item);
    if (!entries) return item;
    if (item.Put) {
      const previous = (item.Put.Item?.[LOG_ATTRIBUTE] as LogEntry[] | undefined) ?? [];
      return { Put: { ...item.Put, Item: { ...item.Put.Item, [LOG_ATTRIBUTE]: [...previous, ...entries] } } };
    }
    const update = item.Update as NonNullable<TxItem["Update"]>;
    return {
      Update: {
        ...update,
        UpdateExpression: addSet(
          update.UpdateExpression as string,
          "#hLog = list_append(if_not_exists(#hLog, :hNone), :hLog)",
        ),
        ExpressionAttributeNames: { ...update.ExpressionAttributeNames, "#hLog": LOG_ATTRIBUTE },
        ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ":hNone": [], ":hLog": entries },
      },
    };
  });
}
