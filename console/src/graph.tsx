/**
 * A workflow's task graph, laid out by dagre (top to bottom) and drawn as SVG: one node per task,
 * coloured by its status with the status in words, a with-items task's bar of its counts, an edge
 * per transition (`failed` and `always` labelled). Nodes are buttons: Tab reaches them, Enter or
 * Space selects, arrow keys move along the edges.
 */
import dagre from "@dagrejs/dagre";
import { useMemo } from "preact/hooks";
import type { TaskView, WorkflowDefinition } from "../../lib/client";
import { signOf } from "./format";

const NODE_WIDTH = 184;
const NODE_HEIGHT = 58;

interface Laid {
  width: number;
  height: number;
  nodes: { name: string; x: number; y: number }[];
  edges: {
    from: string;
    to: string;
    when: string;
    points: { x: number; y: number }[];
    label?: { x: number; y: number };
  }[];
}

export function edgesOf(definition: WorkflowDefinition) {
  return Object.entries(definition.tasks).flatMap(([from, task]) =>
    (task.next ?? []).flatMap((t) => t.do.map((to) => ({ from, to, when: t.when ?? "succeeded" }))),
  );
}

function layout(definition: WorkflowDefinition): Laid {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 28, ranksep: 44, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const name of Object.keys(definition.tasks))
    g.setNode(name, { width: NODE_WIDTH, height: NODE_HEIGHT });
  const edges = edgesOf(definition);
  edges.forEach((e, i) => {
    const labelled = e.when !== "succeeded";
    g.setEdge(e.from, e.to, labelled ? { width: 48, height: 16, labelpos: "c" } : {}, String(i));
  });
  dagre.layout(g);
  const graph = g.graph();
  return {
    width: graph.width ?? 0,
    height: graph.height ?? 0,
    nodes: g.nodes().map((name) => ({ name, x: g.node(name).x, y: g.node(name).y })),
    edges: edges.map((e, i) => {
      const laid = g.edge({ v: e.from, w: e.to, name: String(i) });
      return {
        ...e,
        points: laid?.points ?? [],
        ...(e.when !== "succeeded" && laid?.x !== undefined ? { label: { x: laid.x, y: laid.y } } : {}),
      };
    }),
  };
}

const truncate = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

export function Graph({
  definition,
  tasks,
  selected,
  onSelect,
}: {
  definition: WorkflowDefinition;
  tasks: Record<string, TaskView>;
  selected?: string;
  onSelect: (task: string) => void;
}) {
  const laid = useMemo(() => layout(definition), [definition]);
  const move = (from: string, key: string) => {
    const edges = edgesOf(definition);
    const targets =
      key === "ArrowDown" || key === "ArrowRight"
        ? edges.filter((e) => e.from === from).map((e) => e.to)
        : edges.filter((e) => e.to === from).map((e) => e.from);
    const next = targets[0];
    if (next) document.querySelector<SVGGElement>(`[data-node="${CSS.escape(next)}"]`)?.focus();
  };
  return (
    <section class="graph-wrap" aria-label="The workflow's graph">
      <svg class="graph" viewBox={`0 0 ${laid.width} ${laid.height}`} width={laid.width} height={laid.height}>
        <title>The workflow's tasks; Tab to a task, Enter to select it, arrow keys along the edges</title>
        <defs>
          <marker
            id="arrow"
            viewBox="0 0 10 10"
            refX="9"
            refY="5"
            markerWidth="7"
            markerHeight="7"
            orient="auto"
          >
            <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
          </marker>
        </defs>
        {laid.edges.map((e) => (
          <g key={`${e.from}-${e.to}-${e.when}`} class={`edge when-${e.when}`}>
            <polyline points={e.points.map((p) => `${p.x},${p.y}`).join(" ")} marker-end="url(#arrow)" />
            {e.label && (
              <text x={e.label.x} y={e.label.y + 4} text-anchor="middle" class="edge-label">
                {e.when}
              </text>
            )}
          </g>
        ))}
        {laid.nodes.map((n) => {
          const task = tasks[n.name];
          const status = task?.status ?? "not started";
          const items = task?.items;
          const left = n.x - NODE_WIDTH / 2;
          const top = n.y - NODE_HEIGHT / 2;
          const done = items ? items.succeeded + items.failed + (items.cancelled ?? 0) : 0;
          const summary = items ? `${done.toLocaleString("en")}/${items.total.toLocaleString("en")}` : "";
          return (
            // biome-ignore lint/a11y/useSemanticElements: SVG has no <button>; the role, tabIndex and keys make one
            <g
              key={n.name}
              class={`node s-${status.replace(" ", "-")}${selected === n.name ? " selected" : ""}`}
              data-node={n.name}
              data-status={status}
              role="button"
              // lower case: SVG's attributes are case-sensitive
              tabindex={0}
              aria-pressed={selected === n.name}
              aria-label={`${n.name}: ${status}${items ? `, ${summary} items done` : ""}`}
              onClick={() => onSelect(n.name)}
              onKeyDown={(e) => {
                if (e.key === "Enter" || e.key === " ") {
                  e.preventDefault();
                  onSelect(n.name);
                } else if (e.key.startsWith("Arrow")) {
                  e.preventDefault();
                  move(n.name, e.key);
                }
              }}
            >
              <title>{`${n.name} (${definition.tasks[n.name]?.action ?? ""}): ${status}`}</title>
              <rect x={left} y={top} width={NODE_WIDTH} height={NODE_HEIGHT} rx={8} class="box" />
              <text x={left + 10} y={top + 20} class="name">
                {truncate(n.name, 22)}
              </text>
              <text x={left + 10} y={top + 38} class="status">
                {`${signOf(status)} ${status}`}
                {items ? `  ${summary}` : ""}
              </text>
              {items && items.total > 0 && (
                <g class="mini-bar">
                  <rect x={left + 10} y={top + 45} width={NODE_WIDTH - 20} height={5} class="track" />
                  {
                    (["succeeded", "failed", "running"] as const).reduce(
                      (acc, part) => {
                        const w = ((NODE_WIDTH - 20) * items[part]) / items.total;
                        acc.parts.push(
                          <rect
                            key={part}
                            x={left + 10 + acc.at}
                            y={top + 45}
                            width={w}
                            height={5}
                            class={`seg s-${part}`}
                          />,
                        );
                        acc.at += w;
                        return acc;
                      },
                      { at: 0, parts: [] as preact.JSX.Element[] },
                    ).parts
                  }
                </g>
              )}
            </g>
          );
        })}
      </svg>
    </section>
  );
}
