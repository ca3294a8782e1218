/**
 * The onceflow console (docs/console.md): runs, a run's graph and history, workflows. Routes live
 * in the URL's hash (`#/runs`, `#/runs/ID`, `#/workflows/NAME`), so the server serves one page.
 */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { currentRoute, href } from "./route";
import { RunPage } from "./run";
import { RunsPage } from "./runs";
import { WorkflowPage, WorkflowsPage } from "./workflows";

function App() {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const onChange = () => setRoute(currentRoute());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  const [section = "runs", id] = route.path;
  let page = <RunsPage query={route.query} />;
  let title = "Runs";
  if (section === "runs" && id) {
    page = <RunPage key={id} runId={id} query={route.query} />;
    title = `Run ${id}`;
  } else if (section === "workflows") {
    page = id ? <WorkflowPage key={id} name={id} /> : <WorkflowsPage />;
    title = id ? `Workflow ${id}` : "Workflows";
  }
  useEffect(() => {
    document.title = `${title} · onceflow`;
  }, [title]);
  // a new page: the keyboard's focus goes to its heading (as a screen reader expects)
  useEffect(() => {
    document.querySelector<HTMLElement>("main h1")?.focus({ preventScroll: true });
  }, [section, id]);
  return (
    <>
      {/* a button, not a link: the hash holds the console's route */}
      <button type="button" class="skip" onClick={() => document.getElementById("main")?.focus()}>
        Skip to content
      </button>
      <header class="top">
        <a class="brand" href={href(["runs"])}>
          onceflow
        </a>
        <nav aria-label="Sections">
          <a href={href(["runs"])} aria-current={section === "runs" ? "page" : undefined}>
            Runs
          </a>
          <a href={href(["workflows"])} aria-current={section === "workflows" ? "page" : undefined}>
            Workflows
          </a>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app") as HTMLElement);
