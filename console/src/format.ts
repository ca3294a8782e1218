/** How statuses, times and values are shown: each status has a colour (its CSS class) AND a word and a sign. */

const SIGNS: Record<string, string> = {
  pending: "○",
  waiting: "⏸",
  queued: "◔",
  running: "▶",
  succeeded: "✔",
  failed: "✖",
  cancelled: "⊘",
  "not started": "·",
};

export const signOf = (status: string) => SIGNS[status] ?? "?";

/** `1.2s`, `3m 05s`, `2h 03m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** How long something ran: from start to end, or to now while it runs. */
export function durationOf(startedAt: string | null | undefined, endedAt: string | null | undefined): string {
  if (!startedAt) return "";
  const end = endedAt ? Date.parse(endedAt) : Date.now();
  return formatDuration(end - Date.parse(startedAt));
}

/** A local date and time, to the second. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `+1.234s` from the run's creation. */
export function formatOffset(at: string, from: string): string {
  const ms = Date.parse(at) - Date.parse(from);
  return `+${(ms / 1000).toFixed(3)}s`;
}

export const pretty = (value: unknown) => JSON.stringify(value, null, 2) ?? "null";

export const shortId = (id: string) => id.slice(0, 8);
