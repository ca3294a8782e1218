import { expect } from "vitest";
import { OnceflowError } from "../../lib/client";

/** The typed client's error that `promise` rejects with (failing the test if it resolves or rejects otherwise). */
export async function rejection(promise: Promise<unknown>): Promise<OnceflowError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OnceflowError);
  return error as OnceflowError;
}
