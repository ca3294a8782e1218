/**
 * Calling a handler the way the Lambda runtime does: a `Context` built from the function's
 * serverless.yml entry (name `${service}-${stage}-${fn}`, request id, remaining time from its
 * `timeout`), and an invocation that counts as timed out once that time has passed. The handler
 * cannot be frozen in process, so a timed-out invocation keeps running in the background, like a
 * zombie worker whose result nobody waits for any more.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { Context } from "aws-lambda";
import { localAccountId } from "./serverless-config";

/** Any Lambda handler in the async style (the only one Node.js 24+ runtimes keep). */
export type LambdaHandler<TEvent = unknown, TResult = unknown> = (
  event: TEvent,
  context: Context,
) => Promise<TResult> | TResult;

/** What the context needs to know about a function. */
export interface LambdaFunctionInfo {
  service: string;
  stage: string;
  region: string;
  /** The key under `functions:`. */
  name: string;
  /** Seconds. */
  timeout: number;
  memorySize: number;
}

export function lambdaFunctionName(fn: Pick<LambdaFunctionInfo, "service" | "stage" | "name">): string {
  return `${fn.service}-${fn.stage}-${fn.name}`;
}

/** A fresh `Context` for one invocation that starts now. */
export function createLambdaContext(fn: LambdaFunctionInfo, startedAt: number = Date.now()): Context {
  const functionName = lambdaFunctionName(fn);
  const deadline = startedAt + fn.timeout * 1000;
  const legacy = (name: string) => () => {
    throw new Error(`context.${name}() is not supported: return a value or a promise from the handler`);
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${fn.region}:${localAccountId}:function:${functionName}`,
    memoryLimitInMB: String(fn.memorySize),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: logStreamName(startedAt),
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: legacy("done"),
    fail: legacy("fail"),
    succeed: legacy("succeed"),
  };
}

/** Thrown (as a rejection) when an invocation outlives the function's timeout. */
export class LambdaTimeoutError extends Error {
  constructor(
    readonly functionName: string,
    readonly timeoutSeconds: number,
  ) {
    super(`${functionName} timed out after ${timeoutSeconds} seconds`);
    this.name = "LambdaTimeoutError";
  }
}

/**
 * Invokes a handler with a fresh context. Rejects with the handler's error, or with a
 * `LambdaTimeoutError` once the function's timeout has passed.
 */
export async function invokeLambda<TEvent, TResult>(
  handler: LambdaHandler<TEvent, TResult>,
  event: TEvent,
  fn: LambdaFunctionInfo,
): Promise<TResult> {
  const context = createLambdaContext(fn);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new LambdaTimeoutError(context.functionName, fn.timeout)),
      context.getRemainingTimeInMillis(),
    );
  });
  try {
    const result = Promise.resolve().then(() => handler(event, context));
    // A handler rejecting after its timeout must not become an unhandled rejection.
    result.catch(() => {});
    return await Promise.race([result, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function logStreamName(at: number): string {
  const date = new Date(at).toISOString().slice(0, 10).replaceAll("-", "/");
  return `${date}/[$LATEST]${randomBytes(16).toString("hex")}`;
}
