import { config } from "../config";
import { outbound } from "../definition/graph";
import type { WorkflowDefinition } from "../definition/types";
import { ExpressionError } from "../errors";
import { evaluateTemplate } from "../expression";
import { eventPut } from "../store/events";
import { keys } from "../store/keys";
import { type RunRecord, readRun, readTasks } from "../store/run-state";
import { transact } from "../store/transaction";
import { getWorkflowVersion } from "../workflows";
import { dispatch, planTasks, type TemplateContext } from "./dispatch";
import { evaluate, type TaskStatus } from "./evaluate";
import type { ErrorInfo, TaskRecord } from "./task-record";

export type AdvanceOutcome =
  | { kind: "idle" }
  | { kind: "dispatched"; tasks: string[] }
  | { kind: "ended"; status: "succeeded" | "failed" };

export function templateContext(run: RunRecord, tasks: TaskRecord[]): TemplateContext {
  const context: TemplateContext = { input: run.input, tasks: {} };
  for (const t of tasks) context.tasks[t.task] = { status: t.status, output: t.output, error: t.error };
  return context;
}

/**
 * Moves a run forward after an execution settled: reads the run's state, evaluates the graph, and
 * dispatches what is ready or ends the run. Level-triggered and idempotent: a duplicate or
 * redelivered completion finds every successor already dispatched (their conditional puts fail)
 * or the run already ended (its conditional update fails), and writes nothing (I3, I7).
 */
export async function advance(runId: string): Promise<AdvanceOutcome> {
  const run = await readRun(runId);
  if (run?.status !== "running") return { kind: "idle" };
  const { definition } = await getWorkflowVersion(run.workflow, run.version);
  const tasks = await readTasks(runId);
  const statuses = new Map<string, TaskStatus>(tasks.map((t) => [t.task, t.status]));
  const evaluation = evaluate(definition, statuses);
  const context = templateContext(run, tasks);

  if (!evaluation.complete) {
    if (evaluation.ready.length === 0) return { kind: "idle" };
    const records = await planTasks(runId, definition, evaluation.ready, context);
    return { kind: "dispatched", tasks: await dispatch(runId, records) };
  }

  let status = evaluation.status;
  let output: unknown = null;
  let error: (ErrorInfo & { task?: string }) | undefined;
  if (status === "failed") {
    const task = evaluation.unhandled[0] as string;
    const cause = context.tasks[task]?.error as ErrorInfo | undefined;
    error = {
      code: "TaskFailed",
      message: `task ${task} failed: ${cause?.message ?? "unknown error"}`,
      task,
    };
  } else {
    try {
      output = await runOutput(definition, context);
    } catch (e) {
      if (!(e instanceof ExpressionError)) throw e;
      status = "failed";
      error = { code: e.code, message: `run output: ${e.message}` };
    }
  }
  const ended = await endRun(runId, status, output, error);
  return ended ? { kind: "ended", status } : { kind: "idle" };
}

/** The `output` template, or without one the outputs of the tasks that end the graph. */
async function runOutput(definition: WorkflowDefinition, context: TemplateContext): Promise<unknown> {
  if (definition.output !== undefined)
    return (await evaluateTemplate(definition.output, { ...context }, "output")) ?? null;
  const leaves: Record<string, unknown> = {};
  for (const [name, state] of Object.entries(context.tasks)) {
    if (state.status === "succeeded" && outbound(definition, name).length === 0)
      leaves[name] = state.output ?? null;
  }
  return leaves;
}

async function endRun(
  runId: string,
  status: "succeeded" | "failed",
  output: unknown,
  error: (ErrorInfo & { task?: string }) | undefined,
): Promise<boolean> {
  const now = new Date().toISOString();
  const outcome = await transact([
    {
      Update: {
        TableName: config.tableName(),
        Key: keys.run(runId),
        UpdateExpression: error
          ? "SET #status = :status, #error = :error, endedAt = :now"
          : "SET #status = :status, #output = :output, endedAt = :now",
        // closes: two handlers that both saw the last execution settle ending the run twice
        ConditionExpression: "#status = :running",
        ExpressionAttributeNames: error
          ? { "#status": "status", "#error": "error" }
          : { "#status": "status", "#output": "output" },
        ExpressionAttributeValues: {
          ":status": status,
          ":running": "running",
          ":now": now,
          ...(error ? { ":error": error } : { ":output": output }),
        },
      },
    },
    eventPut(runId, status === "succeeded" ? "RunSucceeded" : "RunFailed", {
      detail: error ? { error } : undefined,
    }),
  ]);
  return outcome.ok;
}
