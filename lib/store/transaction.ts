import { TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { TransactWriteCommand, type TransactWriteCommandInput } from "@aws-sdk/lib-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { db } from "../clients";
import { backoff } from "./backoff";

export type TxItem = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

/** Why one item of a cancelled transaction failed, with the item as it was (ALL_OLD). */
export interface TxReason {
  code: string;
  item?: Record<string, unknown>;
}

export type TxOutcome = { ok: true } | { ok: false; reasons: TxReason[] };

const CONFLICT_RETRIES = 8;

/**
 * Runs a DynamoDB transaction: every state transition of onceflow goes through here, together with
 * the history event it produces, so a transition and its event happen exactly once or not at all.
 *
 * - A failed condition is an answer, not an error: the caller gets every item's reason and, for
 *   items written with `ReturnValuesOnConditionCheckFailure: ALL_OLD`, the winner's state without a
 *   second read.
 * - `TransactionConflict` (another transaction held one of the items) means nothing was written
 *   and no condition was judged, so the transaction is simply tried again.
 * - The SDK gives each call one `ClientRequestToken` that its own retries reuse, so a transaction
 *   whose response was lost and that the SDK sends again reports success instead of failing its
 *   own condition.
 */
export async function transact(items: TxItem[]): Promise<TxOutcome> {
  for (let attempt = 0; ; attempt++) {
    try {
      await db().send(new TransactWriteCommand({ TransactItems: items }));
      return { ok: true };
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons: TxReason[] = (error.CancellationReasons ?? []).map((r) => ({
        code: r.Code ?? "None",
        item: r.Item ? unmarshall(r.Item) : undefined,
      }));
      const failed = reasons.filter((r) => r.code !== "None");
      const conflictOnly = failed.length > 0 && failed.every((r) => r.code === "TransactionConflict");
      if (conflictOnly && attempt < CONFLICT_RETRIES) {
        await backoff(attempt);
        continue;
      }
      if (failed.some((r) => r.code !== "ConditionalCheckFailed" && r.code !== "TransactionConflict")) {
        throw error;
      }
      return { ok: false, reasons };
    }
  }
}
