/**
 * Which items of a with-items task have been counted down, kept on the parent itself: every item
 * below `countedBelow`, and the ones in `countedAbove` (items finish out of order, but within the
 * concurrency window, so that list stays about as long as the window). Each countdown reads the
 * parent, drops the completions already counted, and writes the new set with the counters in the
 * same update, conditional on the parent's `version`: a completion counted by a concurrent handler
 * moved the version, so this handler reads again and finds it counted. One write a batch of
 * completions, none per item (the item's own `counted` flag, written in the countdown's transaction,
 * was one write unit or two per item).
 *
 * A redrive puts failed and cancelled items back (`redo`); each stays counted until a fill queues
 * it again, and from then on counts once more, by a completion of that redrive's incarnation of
 * the item (`putBack`: index → the redrive; the fill stamps the item `redriven`, and its
 * completions carry it). A late completion of the earlier incarnation counts nothing, even one of
 * the same attempt (an item cancelled, put back, and cancelled again before any claim).
 */
import type { CompletionMessage } from "../queue";
import type { FanOutRecord } from "./task-record";

type Counted = Pick<FanOutRecord, "countedBelow" | "countedAbove" | "putBack" | "redo">;

/**
 * The guards of counting, for the simulation's guard-removal tests only: each taken away in turn
 * must be caught by its invariant checks. Never changed outside tests.
 */
export const countingGuards = { duplicates: true, incarnation: true };

const queuedAgain = (p: Counted, index: number) =>
  p.putBack?.[String(index)] !== undefined && !(p.redo ?? []).includes(index);

/** Whether item `index` is counted down on its parent. */
export function isCounted(p: Counted, index: number): boolean {
  if (queuedAgain(p, index)) return false;
  return index < (p.countedBelow ?? 0) || (p.countedAbove ?? []).includes(index);
}

/**
 * Whether `completion` is to be counted now: not an item a redrive put back and no fill queued
 * again yet (a late duplicate), not counted already (a duplicate or redelivery, F1, I7), and, for an
 * item queued again after a redrive, of that redrive's incarnation of the item.
 */
export function countable(p: Counted, completion: CompletionMessage): boolean {
  const index = completion.item as number;
  if ((p.redo ?? []).includes(index)) return false;
  if (queuedAgain(p, index)) {
    const redrive = p.putBack?.[String(index)] as number;
    return !countingGuards.incarnation || (completion.redriven ?? 0) === redrive;
  }
  return !countingGuards.duplicates || !isCounted(p, index);
}

/** The parent's counted set once `indices` (each countable) are counted. */
export function withCounted(p: Counted, indices: number[]): Required<Omit<Counted, "redo">> {
  const putBack = { ...p.putBack };
  const above = new Set(p.countedAbove ?? []);
  let below = p.countedBelow ?? 0;
  for (const index of indices) {
    // an item queued again after a redrive was counted before it: it only leaves `putBack`
    if (putBack[String(index)] !== undefined) delete putBack[String(index)];
    else if (index >= below) above.add(index);
  }
  while (above.has(below)) above.delete(below++);
  return { countedBelow: below, countedAbove: [...above].sort((a, b) => a - b), putBack };
}
