/**
 * Workflows: each with its latest version; a workflow's versions, its definition as YAML and its
 * graph, and "start a run" with an input editor checked against the workflow's input schema (ajv,
 * as the API does) before anything is sent.
 */
import Ajv, { type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { useEffect, useMemo, useState } from "preact/hooks";
import { stringify } from "yaml";
import type { WorkflowListEntry, WorkflowVersions, WorkflowVersionView } from "../../lib/client";
import { client, describeError } from "./api";
import { formatTime } from "./format";
import { Graph } from "./graph";
import { ErrorNote } from "./parts";
import { href } from "./route";

export function WorkflowsPage() {
  const [list, setList] = useState<WorkflowListEntry[] | undefined>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    client.listWorkflows().then(
      (found) => setList([...found].sort((a, b) => a.name.localeCompare(b.name))),
      (e) => setError(describeError(e)),
    );
  }, []);
  return (
    <section aria-labelledby="workflows-title">
      <h1 id="workflows-title" tabIndex={-1}>
        Workflows
      </h1>
      <ErrorNote message={error} />
      {list && list.length === 0 && (
        <p class="muted">
          No workflow yet: register one with <code>npx onceflow apply FILE</code> or{" "}
          <code>PUT /workflows/NAME</code>.
        </p>
      )}
      {list && list.length > 0 && (
        <div class="table-wrap">
          <table class="workflows">
            <thead>
              <tr>
                <th scope="col">Workflow</th>
                <th scope="col">Latest version</th>
                <th scope="col">Registered</th>
                <th scope="col">Runs</th>
              </tr>
            </thead>
            <tbody>
              {list.map((w) => (
                <tr key={w.name} data-workflow={w.name}>
                  <td>
                    <a href={href(["workflows", w.name])}>{w.name}</a>
                  </td>
                  <td class="num">{w.version}</td>
                  <td>{formatTime(w.createdAt)}</td>
                  <td>
                    <a href={href(["runs"], { workflow: w.name })}>runs</a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function WorkflowPage({ name }: { name: string }) {
  const [versions, setVersions] = useState<WorkflowVersions | undefined>();
  const [version, setVersion] = useState<number | undefined>();
  const [shown, setShown] = useState<WorkflowVersionView | undefined>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    client.listVersions(name).then(
      (found) => {
        setVersions(found);
        setVersion(found.versions[0]?.version);
      },
      (e) => setError(describeError(e)),
    );
  }, [name]);
  useEffect(() => {
    if (version === undefined) return;
    client.getWorkflowVersion(name, version).then(setShown, (e) => setError(describeError(e)));
  }, [name, version]);
  const latest = versions?.versions[0]?.version;
  const yaml = useMemo(() => (shown ? stringify(shown.definition) : ""), [shown]);
  return (
    <section aria-labelledby="workflow-title">
      <div class="page-head">
        <h1 id="workflow-title" tabIndex={-1}>
          {name}
        </h1>
        <a href={href(["runs"], { workflow: name })}>Its runs</a>
      </div>
      <ErrorNote message={error} />
      {versions && (
        <label>
          Version{" "}
          <select value={String(version ?? "")} onChange={(e) => setVersion(Number(e.currentTarget.value))}>
            {versions.versions.map((v) => (
              <option key={v.version} value={v.version}>
                v{v.version} — {formatTime(v.createdAt)}
                {v.version === latest ? " (latest)" : ""}
              </option>
            ))}
          </select>
        </label>
      )}
      {shown && (
        <div class="workflow-body">
          <div>
            <h2>Definition (v{shown.version})</h2>
            <pre class="yaml" data-json="definition">
              {yaml}
            </pre>
          </div>
          <div>
            <h2>Graph</h2>
            <Graph definition={shown.definition} tasks={{}} onSelect={() => {}} />
            {shown.version === latest && <StartRun workflow={shown} />}
          </div>
        </div>
      )}
    </section>
  );
}

const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);

/** The input's problems against the schema (`path: message`), or why it is not JSON. */
function problemsOf(text: string, validate?: ValidateFunction): { input?: unknown; problems: string[] } {
  let input: unknown;
  try {
    input = text.trim() === "" ? null : JSON.parse(text);
  } catch (error) {
    return { problems: [`not JSON: ${(error as Error).message}`] };
  }
  if (!validate || validate(input)) return { input, problems: [] };
  return {
    input,
    problems: (validate.errors ?? []).map(
      (e) => `${`input${e.instancePath.replaceAll("/", ".")}`}: ${e.message}`,
    ),
  };
}

function StartRun({ workflow }: { workflow: WorkflowVersionView }) {
  const schema = workflow.definition.input;
  const validate = useMemo(() => {
    try {
      return schema ? ajv.compile(schema) : undefined;
    } catch {
      return undefined;
    }
  }, [schema]);
  const [text, setText] = useState(schema ? "{\n  \n}" : "null");
  const [key, setKey] = useState("");
  const [start, setStart] = useState(true);
  const [answer, setAnswer] = useState<string>();
  const [busy, setBusy] = useState(false);
  const checked = problemsOf(text, validate);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (checked.problems.length > 0) return;
    setBusy(true);
    try {
      const run = await client.createRun(workflow.name, {
        input: checked.input,
        start,
        ...(key ? { idempotencyKey: key } : {}),
      });
      window.location.hash = href(["runs", run.runId]);
    } catch (error) {
      setAnswer(describeError(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="start-run" onSubmit={submit} aria-labelledby="start-title">
      <h2 id="start-title">Start a run</h2>
      {schema ? (
        <details>
          <summary>Input schema</summary>
          <pre class="json">{JSON.stringify(schema, null, 2)}</pre>
        </details>
      ) : (
        <p class="muted">The workflow has no input schema: any JSON.</p>
      )}
      <label for="run-input">Input (JSON)</label>
      <textarea
        id="run-input"
        rows={8}
        spellcheck={false}
        value={text}
        aria-invalid={checked.problems.length > 0}
        aria-describedby="input-problems"
        onInput={(e) => setText(e.currentTarget.value)}
      />
      <ul id="input-problems" class="problems" aria-live="polite">
        {checked.problems.map((p) => (
          <li key={p}>{p}</li>
        ))}
      </ul>
      <label>
        Idempotency key (optional){" "}
        <input value={key} onInput={(e) => setKey(e.currentTarget.value)} maxLength={255} />
      </label>
      <label class="check">
        <input type="checkbox" checked={start} onChange={(e) => setStart(e.currentTarget.checked)} /> start it
        now (else created pending, for a trigger)
      </label>
      <button type="submit" class="primary" disabled={busy || checked.problems.length > 0}>
        {start ? "Start run" : "Create run"}
      </button>
      <ErrorNote message={answer} />
    </form>
  );
}
