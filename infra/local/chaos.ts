/**
 * Fault injection for the local stack (`ONCEFLOW_CHAOS`), so that tests and demos can show the
 * invariants hold when deliveries are duplicated, handled messages come back, and handlers die
 * half-way:
 *
 * - `duplicate`: every SQS delivery also goes to a second, concurrent handler call.
 * - `redeliver`: a message the handler finished is delivered again a little later, as when a
 *   delete is lost (sent again with a new dedup id, same group).
 * - `crash=P`: with probability P an invocation dies at one of its AWS calls, either before the
 *   call (it never happens) or after it (it took effect, the handler never learns). Done by an AWS
 *   SDK middleware on the engine's clients, so it hits real calls; from then on every call of that
 *   invocation fails too, as a dead process makes no more calls.
 *
 * `ONCEFLOW_CHAOS_SEED` makes the choices repeatable.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { APIGatewayProxyEventV2, Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { db, sqs as engineSqs } from "../../lib/clients";
import { onPoint } from "../../lib/engine/interleave";
import { seededRandom } from "./seeded-random";

export interface ChaosOptions {
  duplicate: boolean;
  redeliver: boolean;
  /** Probability that an invocation dies at a given AWS call. */
  crash: number;
  seed: number;
  /**
   * For tests: asked at every AWS call of an invocation (its function, the executions or route it
   * is about, the call's 1-based index in it and its command); "before" or "after" kills the
   * invocation there, as a random crash would.
   */
  plan?: CrashPlan;
}

export type CrashPlan = (call: {
  fn: string;
  keys: string[];
  index: number;
  command: string;
  /** The call's input (e.g. to tell which run a sweeper's call is about). */
  input: unknown;
}) => "before" | "after" | undefined;

/** What was injected, and where: the checker allows a repeat of a call only after a crash. */
export interface ChaosReport {
  duplicates: number;
  redeliveries: number;
  crashes: { at: number; fn: string; command: string; when: "before" | "after"; keys: string[] }[];
}

export class ChaosCrash extends Error {
  constructor(
    readonly command: string,
    readonly when: "before" | "after",
  ) {
    super(`chaos: the handler died ${when} ${command}`);
    this.name = "ChaosCrash";
  }
}

export function parseChaos(
  spec = process.env.ONCEFLOW_CHAOS,
  seed = process.env.ONCEFLOW_CHAOS_SEED,
): ChaosOptions | undefined {
  if (!spec?.trim()) return undefined;
  const options: ChaosOptions = { duplicate: false, redeliver: false, crash: 0, seed: Number(seed ?? 1) };
  for (const part of spec
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [name, value] = part.split("=");
    if (name === "duplicate") options.duplicate = true;
    else if (name === "redeliver") options.redeliver = true;
    else if (name === "crash" && value !== undefined && Number(value) >= 0 && Number(value) <= 1)
      options.crash = Number(value);
    else
      throw new Error(
        `ONCEFLOW_CHAOS: unknown fault "${part}" (use duplicate, redeliver, crash=P with 0 <= P <= 1)`,
      );
  }
  if (!Number.isFinite(options.seed)) throw new Error("ONCEFLOW_CHAOS_SEED must be a number");
  return options;
}

interface Invocation {
  fn: string;
  keys: string[];
  dead: boolean;
  /** AWS calls made so far. */
  calls: number;
}

type Handler = (event: never, context: Context) => unknown;

/** The executions a batch is about (`{runId}/{task}/{item}`), or an HTTP request's `METHOD /path`, for the report. */
function keysOf(event: unknown): string[] {
  const http = (event as Partial<APIGatewayProxyEventV2> | undefined)?.requestContext?.http;
  if (http) return [`${http.method} ${http.path}`];
  const records = (event as Partial<SQSEvent> | undefined)?.Records;
  if (!Array.isArray(records)) return [];
  return records.map((record) => {
    try {
      const body = JSON.parse(record.body) as { runId?: string; task?: string; item?: number };
      return `${body.runId}/${body.task}/${body.item ?? "-"}`;
    } catch {
      return "?";
    }
  });
}

export class Chaos {
  readonly report: ChaosReport = { duplicates: 0, redeliveries: 0, crashes: [] };
  private readonly random: () => number;
  private readonly current = new AsyncLocalStorage<Invocation>();

  constructor(
    readonly options: ChaosOptions,
    private readonly queues: { sqs: SQSClient; urlOf: (arn: string) => string | undefined },
  ) {
    this.random = seededRandom(options.seed);
    if (options.crash > 0 || options.plan) {
      const middleware =
        (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => (args: unknown) =>
          this.call(next, args, String(context.commandName));
      const placement = { step: "initialize", name: "onceflowChaosCrash", override: true } as const;
      db().middlewareStack.add(middleware as never, placement);
      engineSqs().middlewareStack.add(middleware as never, placement);
    }
  }

  /** Takes the crash middleware off the engine's clients (they outlive the stack in tests). */
  close(): void {
    db().middlewareStack.remove("onceflowChaosCrash");
    engineSqs().middlewareStack.remove("onceflowChaosCrash");
    this.stopFollowing();
  }

  /**
   * A worker that runs a successor itself (a continuation) works on an execution its batch does
   * not name: a crash from then on hits that one too, so its key joins the invocation's.
   */
  private readonly stopFollowing = onPoint("work:continue", ({ runId, task, item }) => {
    this.current.getStore()?.keys.push(`${runId}/${task}/${item ?? "-"}`);
  });

  private async call<T>(next: (args: T) => Promise<unknown>, args: T, command: string) {
    const invocation = this.current.getStore();
    if (!invocation) return next(args); // not inside a handler: tests, the checker, the stack itself
    if (invocation.dead) throw new ChaosCrash(command, "before");
    const input = (args as { input?: unknown }).input;
    const planned = this.options.plan?.({ ...invocation, index: ++invocation.calls, command, input });
    if (planned === "before" || this.random() < this.options.crash / 2)
      return this.die(invocation, command, "before");
    const result = await next(args);
    if (planned === "after" || this.random() < this.options.crash / 2)
      return this.die(invocation, command, "after");
    return result;
  }

  private die(invocation: Invocation, command: string, when: "before" | "after"): never {
    invocation.dead = true;
    this.report.crashes.push({ at: Date.now(), fn: invocation.fn, command, when, keys: invocation.keys });
    throw new ChaosCrash(command, when);
  }

  /** The function's handler, with the faults of this chaos around every invocation. */
  wrap(fn: string, handler: Handler): Handler {
    const invoke = (event: never, context: Context) => {
      const invocation: Invocation = { fn, keys: keysOf(event), dead: false, calls: 0 };
      return this.current.run(invocation, async () => {
        const result = await handler(event, context);
        // a dead process answers nothing: Lambda deletes none of its batch, even records it had finished
        if (invocation.dead) throw new ChaosCrash("the invocation's answer", "before");
        return result;
      });
    };
    return (async (event: never, context: Context) => {
      const isSqs = Array.isArray((event as Partial<SQSEvent> | undefined)?.Records);
      if (!isSqs) return invoke(event, context);
      let result: unknown;
      if (this.options.duplicate) {
        this.report.duplicates++;
        const [first] = await Promise.allSettled([invoke(event, context), invoke(event, context)]);
        if (first.status === "rejected") throw first.reason;
        result = first.value;
      } else {
        result = await invoke(event, context);
      }
      if (this.options.redeliver) this.redeliverLater(event as unknown as SQSEvent, result);
      return result;
    }) as Handler;
  }

  private redeliverLater(event: SQSEvent, result: unknown): void {
    const failed = new Set(
      ((result as SQSBatchResponse | undefined)?.batchItemFailures ?? []).map((f) => f.itemIdentifier),
    );
    for (const record of event.Records) {
      if (failed.has(record.messageId) || this.random() >= 0.3) continue;
      const url = this.queues.urlOf(record.eventSourceARN);
      if (!url) continue;
      this.report.redeliveries++;
      const delay = 200 + this.random() * 1500;
      setTimeout(() => {
        this.queues.sqs
          .send(
            new SendMessageCommand({
              QueueUrl: url,
              MessageBody: record.body,
              MessageGroupId: record.attributes.MessageGroupId,
              MessageDeduplicationId: `chaos-${randomUUID()}`,
            }),
          )
          .catch(() => {}); // the stack may be stopping
      }, delay).unref();
    }
  }
}
