/** Small pieces every page uses. */
import type { TaskView } from "../../lib/client";
import { pretty, signOf } from "./format";

/** A status in colour, with its sign and word (never colour alone). */
export function Status({ status }: { status: string }) {
  return (
    <span class={`badge s-${status.replace(" ", "-")}`} data-status={status}>
      <span aria-hidden="true">{signOf(status)}</span> {status}
    </span>
  );
}

export function Json({ value, label }: { value: unknown; label: string }) {
  return (
    <pre class="json" data-json={label}>
      {pretty(value)}
    </pre>
  );
}

type Counts = NonNullable<TaskView["items"]>;

const PARTS = ["succeeded", "failed", "running", "queued", "cancelled"] as const;
/** The bar's parts; what is left of it (the track) is queued. */
const DRAWN = ["succeeded", "failed", "running", "cancelled"] as const;

/** A with-items task's progress: a bar of its counts, and the counts as text. */
export function Progress({ items, compact = false }: { items: Counts; compact?: boolean }) {
  const done = items.succeeded + items.failed + (items.cancelled ?? 0);
  return (
    <div class="progress" data-total={items.total}>
      <div
        class="bar"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={items.total}
        aria-valuenow={done}
        aria-label={`${done} of ${items.total} items done`}
      >
        {DRAWN.map((part) => {
          const n = part === "cancelled" ? (items.cancelled ?? 0) : items[part];
          return n > 0 ? (
            <span class={`seg s-${part}`} style={{ width: `${(100 * n) / items.total}%` }} />
          ) : null;
        })}
      </div>
      {!compact && (
        <dl class="counts">
          {PARTS.filter((p) => p !== "cancelled" || items.cancelled).map((part) => (
            <div key={part} data-count={part}>
              <dt>{part}</dt>
              <dd>{(part === "cancelled" ? items.cancelled : items[part])?.toLocaleString("en")}</dd>
            </div>
          ))}
          <div data-count="total">
            <dt>total</dt>
            <dd>{items.total.toLocaleString("en")}</dd>
          </div>
        </dl>
      )}
    </div>
  );
}

export function ErrorNote({ message }: { message?: string }) {
  return message ? (
    <p class="error-note" role="alert">
      {message}
    </p>
  ) : null;
}
