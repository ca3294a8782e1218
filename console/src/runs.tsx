/** Runs, newest first (GET /runs): filters by workflow and status, pages, refreshed while any is active. */
import { useEffect, useState } from "preact/hooks";
import { isTerminal, RUN_STATUSES, type RunPage } from "../../lib/client";
import { client, useLive } from "./api";
import { durationOf, formatTime, shortId } from "./format";
import { ErrorNote, Status } from "./parts";
import { href } from "./route";

const PAGE_SIZE = 20;

export function RunsPage({ query }: { query: URLSearchParams }) {
  const workflow = query.get("workflow") ?? undefined;
  const status = query.get("status") ?? undefined;
  const cursor = query.get("cursor") ?? undefined;
  // the cursors of the pages before this one, for "Previous"
  const back = query.get("back")?.split(" ").filter(Boolean) ?? [];
  const live = useLive<RunPage>(
    JSON.stringify([workflow, status, cursor]),
    () =>
      client.listRuns({
        workflow,
        status: status as RunPage["runs"][number]["status"] | undefined,
        cursor,
        limit: PAGE_SIZE,
      }),
    // the first page also polls when all is quiet: new runs appear on it
    { active: (page) => page.runs.some((r) => !isTerminal(r.status)), always: !cursor },
  );
  const [workflows, setWorkflows] = useState<string[]>([]);
  useEffect(() => {
    client.listWorkflows().then(
      (list) => setWorkflows(list.map((w) => w.name).sort()),
      () => setWorkflows([]),
    );
  }, []);
  const go = (next: Record<string, string | undefined>) => {
    window.location.hash = href(["runs"], { workflow, status, ...next });
  };
  const page = live.data;
  return (
    <section aria-labelledby="runs-title">
      <div class="page-head">
        <h1 id="runs-title" tabIndex={-1}>
          Runs
        </h1>
        <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter runs">
          <Filter
            label="Workflow"
            name="workflow"
            value={workflow}
            choices={[...new Set([...workflows, ...(workflow ? [workflow] : [])])]}
            onChange={(value) => go({ workflow: value })}
          />
          <Filter
            label="Status"
            name="status"
            value={status}
            choices={RUN_STATUSES}
            onChange={(value) => go({ status: value })}
          />
        </form>
      </div>
      <ErrorNote message={live.error} />
      {page ? (
        <>
          <div class="table-wrap">
            <table class="runs" aria-describedby="runs-title">
              <thead>
                <tr>
                  <th scope="col">Run</th>
                  <th scope="col">Workflow</th>
                  <th scope="col">Status</th>
                  <th scope="col">Created</th>
                  <th scope="col">Duration</th>
                  <th scope="col">Error</th>
                </tr>
              </thead>
              <tbody>
                {page.runs.map((run) => (
                  <tr key={run.runId} data-run={run.runId}>
                    <td>
                      <a href={href(["runs", run.runId])} class="mono" title={run.runId}>
                        {shortId(run.runId)}
                      </a>
                    </td>
                    <td>
                      <a href={href(["workflows", run.workflow])}>{run.workflow}</a>{" "}
                      <span class="muted">v{run.version}</span>
                    </td>
                    <td>
                      <Status status={run.status} />
                    </td>
                    <td>
                      <time dateTime={run.createdAt}>{formatTime(run.createdAt)}</time>
                    </td>
                    <td class="num">{durationOf(run.startedAt, run.endedAt)}</td>
                    <td class="mono">{run.errorCode ?? ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {page.runs.length === 0 && (
            <p class="muted">
              {page.nextCursor ? "No matching run on this page: the next may have some." : "No runs."}
            </p>
          )}
          <nav class="pager" aria-label="Pages">
            <button
              type="button"
              disabled={!cursor}
              onClick={() => go({ cursor: back.at(-1) || undefined, back: back.slice(0, -1).join(" ") })}
            >
              ← Newer
            </button>
            <button
              type="button"
              disabled={!page.nextCursor}
              onClick={() => go({ cursor: page.nextCursor, back: [...back, cursor ?? ""].join(" ") })}
            >
              Older →
            </button>
          </nav>
        </>
      ) : (
        !live.error && <p class="muted">Loading…</p>
      )}
    </section>
  );
}

/** One of the list's filters: "all", or one of `choices`. */
function Filter(props: {
  label: string;
  name: string;
  value: string | undefined;
  choices: readonly string[];
  onChange: (value: string | undefined) => void;
}) {
  return (
    <label>
      {props.label}{" "}
      <select
        name={props.name}
        value={props.value ?? ""}
        onChange={(e) => props.onChange(e.currentTarget.value || undefined)}
      >
        <option value="">all</option>
        {props.choices.map((choice) => (
          <option key={choice} value={choice}>
            {choice}
          </option>
        ))}
      </select>
    </label>
  );
}
