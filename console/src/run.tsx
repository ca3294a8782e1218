/**
 * A run: its status and actions (trigger, cancel, redrive, with the API's answer), what it waits
 * for, its graph (the definition of the run's own version) coloured by each task's status, the
 * selected task (attempts, input, output, error; a with-items task's counts, never its items one
 * by one), the run's input, output and error, and its history.
 */
import { useEffect, useMemo, useState } from "preact/hooks";
import {
  type ExecutionView,
  isTerminal,
  type RunEvent,
  type RunView,
  type TaskDetail,
  type WorkflowVersionView,
} from "../../lib/client";
import { client, describeError, useLive } from "./api";
import { durationOf, formatOffset, formatTime } from "./format";
import { Graph } from "./graph";
import { ErrorNote, Json, Progress, Status } from "./parts";
import { href } from "./route";

export function RunPage({ runId, query }: { runId: string; query: URLSearchParams }) {
  const live = useLive<RunView>(runId, () => client.getRun(runId), { active: (r) => !isTerminal(r.status) });
  const run = live.data;
  const [workflow, setWorkflow] = useState<WorkflowVersionView | { error: string } | undefined>();
  const version = run ? `${run.workflow}@${run.version}` : "";
  useEffect(() => {
    if (!run) return;
    setWorkflow(undefined);
    client
      .getWorkflowVersion(run.workflow, run.version)
      .then(setWorkflow, (error) => setWorkflow({ error: describeError(error) }));
  }, [version]);
  const selected = query.get("task") ?? undefined;
  const select = (task: string) => {
    window.location.hash = href(["runs", runId], { task: task === selected ? undefined : task });
  };

  if (!run)
    return (
      <section>
        <h1 tabIndex={-1}>Run {runId}</h1>
        {live.error ? <ErrorNote message={live.error} /> : <p class="muted">Loading…</p>}
      </section>
    );
  const definition = workflow && "definition" in workflow ? workflow.definition : undefined;
  return (
    <section class="run" aria-labelledby="run-title">
      <div class="page-head">
        <h1 id="run-title" tabIndex={-1}>
          <a href={href(["workflows", run.workflow])}>{run.workflow}</a>{" "}
          <span class="muted">v{run.version}</span> <Status status={run.status} />
        </h1>
        <Actions run={run} onDone={live.refresh} />
      </div>
      <ErrorNote message={live.error} />
      <dl class="facts">
        <div>
          <dt>Run</dt>
          <dd class="mono">{run.runId}</dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{formatTime(run.createdAt)}</dd>
        </div>
        <TimeFacts times={run} />
        {run.redriveCount ? (
          <div>
            <dt>Redriven</dt>
            <dd>{run.redriveCount}×</dd>
          </div>
        ) : null}
        {run.concurrencyKey !== undefined && (
          <div>
            <dt>Concurrency key</dt>
            <dd class="mono">{run.concurrencyKey}</dd>
          </div>
        )}
      </dl>
      <Waiting run={run} />
      <div class="run-body">
        <div class="run-graph">
          <h2>Graph</h2>
          {workflow && "error" in workflow && <ErrorNote message={workflow.error} />}
          {definition ? (
            <Graph definition={definition} tasks={run.tasks} selected={selected} onSelect={select} />
          ) : (
            !workflow && <p class="muted">Loading the definition…</p>
          )}
          <TaskTable run={run} definition={definition} selected={selected} onSelect={select} />
        </div>
        <aside class="run-side" aria-label="Selected task">
          {selected ? (
            <TaskPanel
              key={selected}
              run={run}
              task={selected}
              action={definition?.tasks[selected]?.action}
            />
          ) : (
            <p class="muted hint">
              Select a task (in the graph or the table) to see its attempts, input and output.
            </p>
          )}
        </aside>
      </div>
      <h2>Input, output and error</h2>
      <div class="io">
        <div>
          <h3>Input</h3>
          <Json value={run.input} label="Run input" />
        </div>
        <div>
          <h3>Output</h3>
          <Json value={run.output} label="Run output" />
        </div>
        {run.error !== null && (
          <div>
            <h3>Error</h3>
            <Json value={run.error} label="Run error" />
          </div>
        )}
      </div>
      <History run={run} />
    </section>
  );
}

/** Trigger, cancel, redrive: each sends its request and shows the API's answer (a 409 says why). */
function Actions({ run, onDone }: { run: RunView; onDone: () => void }) {
  const [answer, setAnswer] = useState<{ ok: boolean; text: string } | undefined>();
  const [busy, setBusy] = useState(false);
  const act = async (label: string, call: () => Promise<{ status: string }>) => {
    setBusy(true);
    try {
      const result = await call();
      setAnswer({ ok: true, text: `${label}: accepted, the run is ${result.status}` });
    } catch (error) {
      setAnswer({ ok: false, text: `${label}: ${describeError(error)}` });
    } finally {
      setBusy(false);
      onDone();
    }
  };
  return (
    <div class="actions">
      <div class="buttons">
        <button
          type="button"
          disabled={busy}
          title="Start a run created with start: false"
          onClick={() => act("Trigger", () => client.triggerRun(run.runId))}
        >
          Trigger
        </button>
        <button
          type="button"
          class="danger"
          disabled={busy}
          onClick={() => {
            if (window.confirm(`Cancel run ${run.runId}? Nothing of it is dispatched after this.`))
              void act("Cancel", () => client.cancelRun(run.runId));
          }}
        >
          Cancel run
        </button>
        <button
          type="button"
          disabled={busy}
          title="Restart a failed run from what failed"
          onClick={() => act("Redrive", () => client.redriveRun(run.runId))}
        >
          Redrive
        </button>
      </div>
      <p class={`answer ${answer ? (answer.ok ? "ok" : "refused") : ""}`} role="status" aria-live="polite">
        {answer?.text ?? ""}
      </p>
    </div>
  );
}

/** Why a waiting run (a concurrency key) or its tasks (a limit's slot, a callback) wait. */
function Waiting({ run }: { run: RunView }) {
  const lines: preact.ComponentChildren[] = [];
  if (run.waitingFor) {
    const { concurrencyKey, holder, position } = run.waitingFor;
    lines.push(
      <li key="run">
        The run waits for its concurrency key <code>{concurrencyKey}</code>
        {holder ? (
          <>
            , held by run <a href={href(["runs", holder])}>{holder}</a>
          </>
        ) : null}
        ; it is number {position} in the key's queue.
      </li>,
    );
  }
  for (const [name, task] of Object.entries(run.tasks)) {
    const wait = task.waitingFor;
    if (!wait) continue;
    lines.push(
      <li key={name}>
        Task <strong>{name}</strong>{" "}
        {"callback" in wait ? (
          <>waits for its callback{wait.until ? ` (until ${formatTime(wait.until)})` : ""}.</>
        ) : (
          <>
            waits for a slot of the limit of <code>{wait.action === "*" ? "the workflow" : wait.action}</code>
            : {wait.active} of {wait.maxRunning} running, {wait.waiting} of its executions waiting
            {wait.position ? ` (number ${wait.position} in the queue)` : ""}.
          </>
        )}
      </li>,
    );
  }
  if (lines.length === 0) return null;
  return (
    <div class="waiting" role="note" aria-label="What the run waits for">
      <h2>Waiting</h2>
      <ul>{lines}</ul>
    </div>
  );
}

function TaskTable({
  run,
  definition,
  selected,
  onSelect,
}: {
  run: RunView;
  definition?: WorkflowVersionView["definition"];
  selected?: string;
  onSelect: (task: string) => void;
}) {
  const names = definition ? Object.keys(definition.tasks) : Object.keys(run.tasks);
  return (
    <div class="table-wrap">
      <table class="tasks">
        <caption>Tasks</caption>
        <thead>
          <tr>
            <th scope="col">Task</th>
            <th scope="col">Action</th>
            <th scope="col">Status</th>
            <th scope="col">Attempts or items</th>
          </tr>
        </thead>
        <tbody>
          {names.map((name) => {
            const task = run.tasks[name];
            return (
              <tr key={name} data-task={name} class={selected === name ? "selected" : ""}>
                <td>
                  <button
                    type="button"
                    class="link"
                    aria-pressed={selected === name}
                    onClick={() => onSelect(name)}
                  >
                    {name}
                  </button>
                </td>
                <td class="mono">{definition?.tasks[name]?.action ?? ""}</td>
                <td>
                  <Status status={task?.status ?? "not started"} />
                </td>
                <td>
                  {task?.items ? (
                    <Progress items={task.items} compact />
                  ) : task?.attempts !== undefined ? (
                    `${task.attempts} attempt${task.attempts === 1 ? "" : "s"}`
                  ) : (
                    ""
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function TaskPanel({ run, task, action }: { run: RunView; task: string; action?: string }) {
  const view = run.tasks[task];
  const live = useLive<TaskDetail | null>(
    `${run.runId}/${task}/${view ? "started" : "not"}`,
    () => (view ? client.getTask(run.runId, task) : Promise.resolve(null)),
    { active: (d) => d !== null && !["succeeded", "failed", "cancelled"].includes(d.status) },
  );
  const detail = live.data;
  return (
    <div class="task-panel" data-selected-task={task}>
      <h2>
        Task {task} <Status status={view?.status ?? "not started"} />
      </h2>
      {action && (
        <p>
          Action <code>{action}</code>
        </p>
      )}
      <ErrorNote message={live.error} />
      {!view && <p class="muted">Not started in this run.</p>}
      {view?.items && (
        <>
          <h3>Items</h3>
          <Progress items={view.items} />
        </>
      )}
      {detail && "attempts" in detail && <Execution detail={detail} />}
      {detail && !("attempts" in detail) && (
        <>
          <Times detail={detail} />
          {detail.error !== null && <Json value={detail.error} label="Task error" />}
          <ItemInspector runId={run.runId} task={task} total={view?.items?.total ?? 0} />
        </>
      )}
    </div>
  );
}

interface Timed {
  startedAt?: string | null;
  endedAt?: string | null;
}

/** Started, ended and duration, as entries of a `<dl class="facts">`: a run's, a task's, an item's. */
function TimeFacts({ times }: { times: Timed }) {
  return (
    <>
      <div>
        <dt>Started</dt>
        <dd>{formatTime(times.startedAt) || "—"}</dd>
      </div>
      <div>
        <dt>Ended</dt>
        <dd>{formatTime(times.endedAt) || "—"}</dd>
      </div>
      <div>
        <dt>Duration</dt>
        <dd data-field="duration">{durationOf(times.startedAt, times.endedAt) || "—"}</dd>
      </div>
    </>
  );
}

function Times({ detail }: { detail: Timed }) {
  return (
    <dl class="facts small">
      <TimeFacts times={detail} />
    </dl>
  );
}

function Execution({ detail }: { detail: ExecutionView }) {
  return (
    <div class="execution">
      <dl class="facts small">
        <div>
          <dt>Attempts</dt>
          <dd data-field="attempts">{detail.attempts}</dd>
        </div>
      </dl>
      <Times detail={detail} />
      {detail.error !== null && (
        <>
          <h3>Error</h3>
          <Json value={detail.error} label="Task error" />
        </>
      )}
      <h3>Input</h3>
      <Json value={detail.input} label="Task input" />
      <h3>Output</h3>
      <Json value={detail.output} label="Task output" />
    </div>
  );
}

/** One item of a with-items task, by its index (GET /runs/{id}/tasks/{task}?item=N). */
function ItemInspector({ runId, task, total }: { runId: string; task: string; total: number }) {
  const [index, setIndex] = useState("0");
  const [shown, setShown] = useState<ExecutionView | { error: string } | undefined>();
  const look = async (e: Event) => {
    e.preventDefault();
    try {
      setShown((await client.getTask(runId, task, Number(index))) as ExecutionView);
    } catch (error) {
      setShown({ error: describeError(error) });
    }
  };
  return (
    <form class="inspect" onSubmit={look}>
      <h3>One item</h3>
      <label>
        Item (0 to {Math.max(total - 1, 0)}){" "}
        <input
          type="number"
          min={0}
          max={Math.max(total - 1, 0)}
          value={index}
          onInput={(e) => setIndex(e.currentTarget.value)}
        />
      </label>{" "}
      <button type="submit">Show</button>
      {shown && "error" in shown && typeof shown.error === "string" && !("attempts" in shown) ? (
        <ErrorNote message={shown.error} />
      ) : shown ? (
        <>
          <p>
            Item {(shown as ExecutionView).item}: <Status status={(shown as ExecutionView).status} />
          </p>
          <Execution detail={shown as ExecutionView} />
        </>
      ) : null}
    </form>
  );
}

const HISTORY_PAGE = 200;

/** The history as a table (time from the run's creation, type, task, item, attempt, detail), a page at a time. */
function History({ run }: { run: RunView }) {
  const [open, setOpen] = useState(true);
  return (
    <details class="history" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>
        <h2>History</h2>
      </summary>
      {open && <HistoryTable run={run} />}
    </details>
  );
}

function HistoryTable({ run }: { run: RunView }) {
  // read again when the run's status changes (its last events come with its end)
  const live = useLive<RunEvent[]>(`${run.runId}/events/${run.status}`, () => client.getEvents(run.runId), {
    active: () => !isTerminal(run.status),
    keep: true,
    // a fan-out's history is long: not every second
    minMs: 3000,
  });
  const [task, setTask] = useState("");
  const [shown, setShown] = useState(HISTORY_PAGE);
  const events = live.data ?? [];
  const tasks = useMemo(() => [...new Set(events.flatMap((e) => (e.task ? [e.task] : [])))], [events]);
  const filtered = task ? events.filter((e) => e.task === task) : events;
  return (
    <>
      <ErrorNote message={live.error} />
      <div class="filters">
        <label>
          Task{" "}
          <select value={task} onChange={(e) => setTask(e.currentTarget.value)}>
            <option value="">all</option>
            {tasks.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <span class="muted" data-field="event-count">
          {filtered.length.toLocaleString("en")} event{filtered.length === 1 ? "" : "s"}
        </span>
      </div>
      <div class="table-wrap">
        <table class="events">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Type</th>
              <th scope="col">Task</th>
              <th scope="col">Item</th>
              <th scope="col">Attempt</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            {filtered.slice(0, shown).map((e) => (
              <tr key={e.seq} data-event={e.type}>
                <td class="num" title={e.at}>
                  {formatOffset(e.at, run.createdAt)}
                </td>
                <td>{e.type}</td>
                <td>{e.task ?? ""}</td>
                <td class="num">{e.item ?? ""}</td>
                <td class="num">{e.attempt ?? ""}</td>
                <td class="mono detail">{e.detail ? JSON.stringify(e.detail) : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {filtered.length > shown && (
        <button type="button" onClick={() => setShown(shown + HISTORY_PAGE)}>
          Show {Math.min(HISTORY_PAGE, filtered.length - shown)} more of{" "}
          {(filtered.length - shown).toLocaleString("en")}
        </button>
      )}
    </>
  );
}
