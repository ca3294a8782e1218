/**
 * The sweeper's clock. EventBridge calls a function at most once a minute, and the sweeper must
 * look every few seconds: an execution whose worker died is overdue as soon as its lease ends. So
 * each pass schedules the next one, as a tick message on a standard SQS queue (a FIFO queue takes
 * no delay per message) delayed by `SWEEP_EVERY_SECONDS`; it sends that tick before it sweeps, so
 * a sweeper that dies mid-pass stops only its own pass.
 *
 * One chain of ticks lives at a time. The tick item holds `tickAt`, when the chain's next tick is
 * due, and a tick is taken by a conditional write on it. Timeline (every 5 s):
 *
 *   t0     tick(due t0) taken: tickAt = t0+5; tick(due t0+5) sent, delayed 5 s; pass
 *   t0+5   tick(due t0+5) taken: tickAt = t0+10; tick(due t0+10) sent; pass
 *
 * - A tick delivered twice (a standard queue may), or one that comes back because its sweeper died
 *   after sending the next: `tickAt` has moved past its `due`; refused, dropped.
 * - A sweeper that died before sending the next tick: its own tick comes back when the queue's
 *   visibility timeout ends (the sweeper's timeout, 10 s); by then `tickAt` is more than STALE
 *   seconds past, so that tick takes the chain over.
 * - The once-a-minute schedule sends a kick: a tick without `due`, delivered at once, which takes
 *   the chain over only when it is stale (it starts the first chain, and one whose tick was lost).
 *   The schedule sweeps nothing itself: a kick whose sweeper dies comes back after the visibility
 *   timeout like any tick (10 s), where a schedule that died taking over would have left the chain
 *   dead until the next minute.
 * - So does a run's launch when it finds no chain alive (`wakeSweeper`): the first runs after a
 *   deploy, or after `npm start`, would otherwise have nothing looking at them for up to a minute.
 */
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { db, sqs } from "../clients";
import { config } from "../config";
import { updateIf } from "../store/conditional";
import { keys } from "../store/keys";
import { type SweepResult, sweep } from "./sweep";
import { addSeconds } from "./task-record";

/** A chain whose next tick is this late is dead: a live one's tick is taken within a second or so of its due time. */
const STALE_SECONDS = 3;

export interface Tick {
  /** When this tick was due (the chain's `tickAt` when it was sent); none: a kick (`kick`). */
  due?: string;
}

/**
 * Takes the chain for this pass: with the tick it received (`due`), or with none (the schedule).
 * Returns the next tick to send, or undefined when another chain lives (drop this one).
 */
export async function takeTick(due: string | undefined, now = new Date()): Promise<Tick | undefined> {
  const next = addSeconds(now, config.sweepEverySeconds()).toISOString();
  const taken = await updateIf({
    TableName: config.tableName(),
    Key: keys.sweeperTick,
    UpdateExpression: "SET tickAt = :next",
    // closes: two chains of ticks living on (a tick delivered twice, a tick that came back after
    // its sweeper sent the next one, the schedule while a chain lives): only the holder of the
    // current tick, or the first to find the chain dead, goes on
    ConditionExpression: `attribute_not_exists(tickAt) OR tickAt < :stale${due ? " OR tickAt = :due" : ""}`,
    ExpressionAttributeValues: {
      ":next": next,
      ":stale": addSeconds(now, -STALE_SECONDS).toISOString(),
      ...(due ? { ":due": due } : {}),
    },
  });
  return taken ? { due: next } : undefined;
}

/** Sends the chain's next tick, delivered when it is due (a kick, at once). */
export async function sendTick(tick: Tick, now = new Date()): Promise<void> {
  const delay = tick.due ? Math.max(0, Math.ceil((Date.parse(tick.due) - now.getTime()) / 1000)) : 0;
  await sqs().send(
    new SendMessageCommand({
      QueueUrl: config.sweepQueueUrl(),
      MessageBody: JSON.stringify(tick),
      DelaySeconds: Math.min(900, delay),
    }),
  );
}

/** The schedule's part: a kick, which takes the chain over if it is dead (see above). */
export async function kick(): Promise<void> {
  await sendTick({});
}

/**
 * A kick, if no chain lives: the tick item has no `tickAt`, or one STALE_SECONDS past (as
 * `takeTick` judges). Called as a run is launched (advance.ts), so that no run waits for the
 * schedule to be looked at. A read a launch (eventually consistent: a stale answer only sends a
 * kick that `takeTick` drops).
 */
export async function wakeSweeper(now = new Date()): Promise<void> {
  const { Item } = await db().send(new GetCommand({ TableName: config.tableName(), Key: keys.sweeperTick }));
  const tickAt = Item?.tickAt as string | undefined;
  if (tickAt !== undefined && tickAt >= addSeconds(now, -STALE_SECONDS).toISOString()) return;
  await kick();
}

/**
 * A tick (or a kick, `due` undefined): takes the chain, sends its next tick, then sweeps.
 * Undefined when another chain lives: this tick is dropped and nothing is swept.
 */
export async function onTick(due: string | undefined, now = new Date()): Promise<SweepResult | undefined> {
  const next = await takeTick(due, now);
  if (!next) return undefined;
  await sendTick(next, now);
  return sweep(now);
}
