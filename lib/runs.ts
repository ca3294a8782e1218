import { config } from "./config";
import { startTasks } from "./definition/graph";
import { canonicalJson, sha256 } from "./definition/hash";
import { validateRunInput } from "./definition/input-schema";
import { advance } from "./engine/advance";
import { cancelRemaining } from "./engine/cancel";
import { planTasks, taskCreation } from "./engine/dispatch";
import { addSeconds, isFanOut, sweepShard, type TaskItem, type TaskRecord } from "./engine/task-record";
import {
  IdempotencyKeyReusedError,
  InputTooLargeError,
  InvalidRequestError,
  RunAlreadyEndedError,
  RunAlreadyStartedError,
  RunNotFoundError,
} from "./errors";
import { newRunId } from "./ids";
import { sendTasks } from "./queue";
import { eventPut, listEvents, type RunEvent } from "./store/events";
import { keys } from "./store/keys";
import { type RunRecord, type RunStatus, readRun, readTasks, TERMINAL_RUN_STATUSES } from "./store/run-state";
import { type TxItem, transact } from "./store/transaction";
import { getLatestWorkflow, getWorkflowVersion, type WorkflowVersion } from "./workflows";

export const MAX_INPUT_BYTES = 256 * 1024;
/** Idempotency keys are remembered this long. */
const IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600;
/** Start tasks created in the run's own transaction (DynamoDB takes 100 items a transaction). */
const START_TASKS_IN_TRANSACTION = 40;

export interface RunSummary {
  runId: string;
  status: RunStatus;
}

export interface CreateRunRequest {
  input?: unknown;
  start?: boolean;
}

function checkCreateRequest(body: unknown, idempotencyKey: string | undefined): CreateRunRequest {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body))
    throw new InvalidRequestError("the body must be a JSON object");
  const problems = Object.keys(body)
    .filter((k) => k !== "input" && k !== "start")
    .map((k) => ({ path: k, message: "unknown field (expected `input` and `start`)" }));
  const { start } = body as CreateRunRequest;
  if (start !== undefined && typeof start !== "boolean")
    problems.push({ path: "start", message: "must be a boolean" });
  if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
    problems.push({ path: "Idempotency-Key", message: "must be 1 to 255 printable ASCII characters" });
  }
  if (problems.length > 0) throw new InvalidRequestError("invalid run request", problems);
  return body as CreateRunRequest;
}

/**
 * Creates a run of the workflow's latest version. With an `Idempotency-Key`, the key's record and
 * the run are written in one transaction behind `attribute_not_exists`, so the same key raced from
 * many clients creates one run (I1); a later request with the same key and input gets that run.
 * With `start` (the default) the run starts in the same transaction, its start tasks created.
 */
export async function createRun(
  workflowName: string,
  body: unknown,
  idempotencyKey?: string,
): Promise<{ run: RunSummary; created: boolean }> {
  const request = checkCreateRequest(body, idempotencyKey);
  const input = request.input ?? null;
  const inputJson = canonicalJson(input);
  if (Buffer.byteLength(inputJson) > MAX_INPUT_BYTES) throw new InputTooLargeError(MAX_INPUT_BYTES);
  const workflow = await getLatestWorkflow(workflowName);
  validateRunInput(workflow.definition.input, input);

  const start = request.start ?? true;
  const runId = newRunId();
  const now = new Date();
  const run: RunRecord = {
    runId,
    workflow: workflow.name,
    version: workflow.version,
    status: start ? "running" : "pending",
    input,
    idempotencyKey,
    createdAt: now.toISOString(),
    ...(start ? startFields(runId, workflow, now) : {}),
  };
  const inputHash = sha256(inputJson);
  const items: TxItem[] = [];
  if (idempotencyKey) {
    items.push({
      Put: {
        TableName: config.tableName(),
        Item: {
          ...keys.idempotency(workflow.name, idempotencyKey),
          runId,
          inputHash,
          createdAt: run.createdAt,
          expiresAt: Math.floor(now.getTime() / 1000) + IDEMPOTENCY_TTL_SECONDS,
        },
        // closes: concurrent creates with one Idempotency-Key each creating a run (I1)
        ConditionExpression: "attribute_not_exists(pk)",
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    });
  }
  items.push({
    Put: {
      TableName: config.tableName(),
      Item: { ...keys.run(runId), ...run },
      // closes: a run id collision overwriting another run
      ConditionExpression: "attribute_not_exists(pk)",
    },
  });
  items.push(
    eventPut(runId, "RunCreated", { detail: { workflow: workflow.name, version: workflow.version } }),
  );
  const starts = start ? await startRecords(run, workflow) : [];
  if (start) items.push(eventPut(runId, "RunStarted"), ...starts.flatMap(taskCreation));

  const outcome = await transact(items);
  if (!outcome.ok) {
    const previous = idempotencyKey ? outcome.reasons[0]?.item : undefined;
    if (!previous) throw new Error("run creation failed its conditions");
    if (previous.inputHash !== inputHash)
      throw new IdempotencyKeyReusedError(idempotencyKey as string, String(previous.runId));
    const existing = await readRun(String(previous.runId));
    if (existing?.status === "running") await resume(existing.runId);
    return { run: { runId: String(previous.runId), status: existing?.status ?? "pending" }, created: false };
  }
  await launch(run, starts, workflow);
  return { run: { runId, status: run.status }, created: true };
}

/** How often the sweeper looks at a running run without a nearer deadline (a stuck run heals). */
const RUN_SWEEP_SECONDS = 60;

/** What a run gets when it starts: its deadline, and its place in the sweeper's index. */
function startFields(
  runId: string,
  workflow: WorkflowVersion,
  now: Date,
): Pick<RunRecord, "startedAt" | "deadline" | "sweepShard" | "sweepAt"> {
  const timeout = workflow.definition.timeoutSeconds;
  const deadline = timeout ? addSeconds(now, timeout).toISOString() : undefined;
  const check = addSeconds(now, RUN_SWEEP_SECONDS).toISOString();
  return {
    startedAt: now.toISOString(),
    deadline,
    sweepShard: sweepShard(runId),
    sweepAt: deadline && deadline < check ? deadline : check,
  };
}

/**
 * The plain start tasks that fit in the run's own transaction. The others (with-items tasks, or
 * more than fit) are started by `advance` right after; should the process die in between, the
 * sweeper's periodic look at the running run starts them.
 */
async function startRecords(run: RunRecord, workflow: WorkflowVersion): Promise<TaskRecord[]> {
  const { definition } = workflow;
  const names = startTasks(definition)
    .filter((task) => definition.tasks[task]?.withItems === undefined)
    .slice(0, START_TASKS_IN_TRANSACTION);
  return planTasks(run.runId, definition, names, { input: run.input, tasks: {} });
}

async function launch(run: RunRecord, starts: TaskRecord[], workflow: WorkflowVersion): Promise<void> {
  await sendTasks(starts.map((t) => ({ runId: run.runId, task: t.task })));
  if (startTasks(workflow.definition).length > starts.length) await advance(run.runId);
}

/**
 * A create repeated with its Idempotency-Key (a client retrying after a timeout or a 5xx) finishes
 * what the first one may have left undone when it died after its transaction: the start tasks'
 * messages (same dedup ids, so SQS drops them if they were sent) and the tasks `advance` starts.
 */
async function resume(runId: string): Promise<void> {
  const unclaimed = (await readTasks(runId)).filter(
    (t) => !isFanOut(t) && t.status === "queued" && t.attempt === 0,
  );
  await sendTasks(unclaimed.map((t) => ({ runId, task: t.task })));
  await advance(runId);
}

async function requireRun(runId: string): Promise<RunRecord> {
  const run = await readRun(runId);
  if (!run) throw new RunNotFoundError(runId);
  return run;
}

/**
 * Starts a run created with `start: false`. The claim is one conditional write on
 * `status = :pending`: of any number of triggers, on any number of API instances, one starts the
 * run and every other gets `RunAlreadyStarted` with the status it found (F2).
 */
export async function triggerRun(runId: string): Promise<RunSummary> {
  const run = await requireRun(runId);
  if (run.status !== "pending") throw new RunAlreadyStartedError(runId, run.status);
  const workflow = await getWorkflowVersion(run.workflow, run.version);
  const starts = await startRecords(run, workflow);
  const started = startFields(runId, workflow, new Date());
  const outcome = await transact([
    {
      Update: {
        TableName: config.tableName(),
        Key: keys.run(runId),
        UpdateExpression:
          "SET #status = :running, startedAt = :startedAt, sweepShard = :shard, sweepAt = :sweepAt" +
          (started.deadline ? ", deadline = :deadline" : ""),
        // closes: two triggers of one run both starting it (F2, I1)
        ConditionExpression: "#status = :pending",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":running": "running",
          ":pending": "pending",
          ":startedAt": started.startedAt,
          ":shard": started.sweepShard,
          ":sweepAt": started.sweepAt,
          ...(started.deadline ? { ":deadline": started.deadline } : {}),
        },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    },
    eventPut(runId, "RunStarted"),
    ...starts.flatMap(taskCreation),
  ]);
  if (!outcome.ok) {
    const status = String(outcome.reasons[0]?.item?.status ?? "unknown");
    throw new RunAlreadyStartedError(runId, status);
  }
  await launch({ ...run, ...started, status: "running" }, starts, workflow);
  return { runId, status: "running" };
}

/**
 * Cancels a run: one conditional transition to `cancelled`, after which no dispatch can succeed
 * (every dispatch holds only while the run is running). Queued executions are then cancelled;
 * running ones finish and are recorded, and start nothing.
 */
export async function cancelRun(runId: string): Promise<RunSummary> {
  const run = await requireRun(runId);
  if (TERMINAL_RUN_STATUSES.includes(run.status)) throw new RunAlreadyEndedError(runId, run.status);
  const outcome = await transact([
    {
      Update: {
        TableName: config.tableName(),
        Key: keys.run(runId),
        UpdateExpression: "SET #status = :cancelled, endedAt = :now REMOVE sweepShard, sweepAt",
        // closes: cancelling a run that ended (or was cancelled) in the meantime
        ConditionExpression: "#status IN (:pending, :running, :waiting)",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":cancelled": "cancelled",
          ":pending": "pending",
          ":running": "running",
          ":waiting": "waiting",
          ":now": new Date().toISOString(),
        },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    },
    eventPut(runId, "RunCancelled"),
  ]);
  if (!outcome.ok)
    throw new RunAlreadyEndedError(runId, String(outcome.reasons[0]?.item?.status ?? "unknown"));
  await cancelRemaining(runId);
  return { runId, status: "cancelled" };
}

export interface TaskView {
  status: string;
  attempts?: number;
  error?: unknown;
  /** With-items tasks, from the counters: `queued` wait for a concurrency slot, `running` are dispatched and unsettled. */
  items?: {
    total: number;
    queued: number;
    running: number;
    succeeded: number;
    failed: number;
    cancelled?: number;
  };
}

function taskView(t: TaskItem): TaskView {
  const error = t.error ? { error: t.error } : {};
  if (!isFanOut(t)) return { status: t.status, attempts: t.attempt, ...error };
  const notStarted = t.total - t.nextIndex;
  const items: NonNullable<TaskView["items"]> = {
    total: t.total,
    queued: t.status === "running" ? notStarted : 0,
    running: t.active,
    succeeded: t.succeededItems,
    failed: t.failedItems,
  };
  const cancelled = (t.cancelledItems ?? 0) + (t.status === "running" ? 0 : notStarted);
  if (cancelled > 0) items.cancelled = cancelled;
  return { status: t.status, ...error, items };
}

export interface RunView {
  runId: string;
  workflow: string;
  version: number;
  status: RunStatus;
  input: unknown;
  output: unknown;
  error: unknown;
  tasks: Record<string, TaskView>;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
}

export async function getRunView(runId: string): Promise<RunView> {
  const [run, tasks] = await Promise.all([requireRun(runId), readTasks(runId)]);
  return {
    runId,
    workflow: run.workflow,
    version: run.version,
    status: run.status,
    input: run.input,
    output: run.output ?? null,
    error: run.error ?? null,
    tasks: Object.fromEntries(tasks.map((t) => [t.task, taskView(t)])),
    createdAt: run.createdAt,
    startedAt: run.startedAt ?? null,
    endedAt: run.endedAt ?? null,
  };
}

export async function getRunEvents(runId: string): Promise<{ events: RunEvent[] }> {
  await requireRun(runId);
  return { events: await listEvents(runId) };
}
