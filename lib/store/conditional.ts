/**
 * One conditional write outside a transaction. As in transaction.ts, a failed condition is an
 * answer (false: someone else moved the item first), not an error; any other failure is thrown.
 */
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import {
  PutCommand,
  type PutCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { db } from "../clients";

/** The guard of a put that creates an item: no item with its key yet. */
export const IF_ABSENT = "attribute_not_exists(pk)";

async function answered(write: Promise<unknown>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** A conditional UpdateItem: true when written, false when its condition failed. */
export function updateIf(input: UpdateCommandInput): Promise<boolean> {
  return answered(db().send(new UpdateCommand(input)));
}

/** A conditional PutItem: true when written, false when its condition failed. */
export function putIf(input: PutCommandInput): Promise<boolean> {
  return answered(db().send(new PutCommand(input)));
}
