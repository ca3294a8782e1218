import { config } from "./config";
import { canonicalJson, sha256 } from "./definition/hash";
import { validateRunInput } from "./definition/input-schema";
import { advance, launch, launchPromoted, windDown } from "./engine/advance";
import { lookKept } from "./engine/end-run";
import { point } from "./engine/interleave";
import { acquireOrWait, concurrencyKeyOf, readLock, release, retake } from "./engine/lock";
import { messagesOnRun, unwrittenOnRun } from "./engine/plan";
import { planRedrive } from "./engine/redrive";
import { planStart, startTransition } from "./engine/start";
import { isFanOut } from "./engine/task-record";
import {
  ConcurrencyKeyBusyError,
  IdempotencyKeyReusedError,
  InputTooLargeError,
  InvalidRequestError,
  RunAlreadyEndedError,
  RunAlreadyStartedError,
  RunNotFoundError,
} from "./errors";
import { newRunId } from "./ids";
import { isTerminal } from "./model/run-status";
import { sendTasks } from "./queue";
import { IF_ABSENT } from "./store/conditional";
import { lostRace, retryOnContention } from "./store/contention";
import { historyEvent } from "./store/events";
import { keys } from "./store/keys";
import { type RunRecord, type RunStatus, readItem, readRun, readTasks } from "./store/run-state";
import { reasonAt, transact, type Write } from "./store/transaction";
import { getLatestWorkflow, getWorkflowVersion } from "./workflows";

export const MAX_INPUT_BYTES = 256 * 1024;
/** Idempotency keys are remembered this long. */
const IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600;

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
  const concurrencyKey = await concurrencyKeyOf(workflow.definition, input);
  const inputHash = sha256(inputJson);
  const start = request.start ?? true;

  // the lock moving on every try throws (ContentionError, 503): no run was created, and the client
  // tries again
  return retryOnContention(
    `create a run of ${workflow.name} (its concurrency-key lock kept moving)`,
    async () => {
      const runId = newRunId();
      const now = new Date();
      const lock = concurrencyKey ? await readLock(workflow.name, concurrencyKey) : undefined;
      const taken = concurrencyKey ? acquireOrWait(lock, workflow.name, concurrencyKey, runId) : undefined;
      if (taken && !taken.acquired && workflow.definition.onConcurrencyConflict === "reject") {
        // a replayed create (of the holder, or of a run since ended) answers with its run, not 409
        const replayed = idempotencyKey && (await readItem(keys.idempotency(workflow.name, idempotencyKey)));
        if (!replayed) throw new ConcurrencyKeyBusyError(concurrencyKey as string, String(lock?.holder));
      }
      const status = taken && !taken.acquired ? "waiting" : start ? "running" : "pending";
      const run: RunRecord = {
        runId,
        workflow: workflow.name,
        version: workflow.version,
        status,
        input,
        idempotencyKey,
        concurrencyKey,
        startOnLock: status === "waiting" ? start : undefined,
        createdAt: now.toISOString(),
      };
      // the history in order: created, the key taken or waited for, then started
      const history = [
        historyEvent(runId, "RunCreated", { detail: { workflow: workflow.name, version: workflow.version } }),
        ...(taken
          ? [
              historyEvent(runId, taken.acquired ? "LockAcquired" : "LockWaiting", {
                detail: { concurrencyKey, ...(taken.holder ? { holder: taken.holder } : {}) },
              }),
            ]
          : []),
      ];
      const started = status === "running" ? await planStart(run, workflow, now) : undefined;
      Object.assign(run, started?.fields);
      const items: Write[] = [];
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
            ConditionExpression: IF_ABSENT,
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          },
        });
      }
      items.push(
        {
          Put: {
            TableName: config.tableName(),
            Item: { ...keys.run(runId), ...keys.runListing(run), ...run },
            // closes: a run id collision overwriting another run
            ConditionExpression: IF_ABSENT,
          },
        },
        ...history,
      );
      if (taken) items.push(taken.write);
      items.push(...(started?.writes ?? []));

      const outcome = await transact(items);
      if (outcome.ok) {
        if (started) await launch(run, started.tasks, workflow);
        return { run: { runId, status: run.status }, created: true };
      }
      const previous = idempotencyKey
        ? reasonAt(outcome, keys.idempotency(workflow.name, idempotencyKey))?.item
        : undefined;
      if (previous) {
        if (previous.inputHash !== inputHash)
          throw new IdempotencyKeyReusedError(idempotencyKey as string, String(previous.runId));
        const existing = await readRun(String(previous.runId));
        if (existing?.status === "running") await resume(existing);
        return {
          run: { runId: String(previous.runId), status: existing?.status ?? "pending" },
          created: false,
        };
      }
      // the concurrency-key lock moved since it was read (another create, a run ending): again
      return lostRace(outcome.reasons);
    },
  );
}

/**
 * A create repeated with its Idempotency-Key (a client retrying after a timeout or a 5xx) finishes
 * what the first one may have left undone when it died after its transaction: the start tasks'
 * messages (same dedup ids, so SQS drops them if they were sent) and the tasks `advance` starts.
 */
async function resume(run: RunRecord): Promise<void> {
  const { runId } = run;
  const tasks = await readTasks(runId);
  const unclaimed = tasks.filter((t) => !isFanOut(t) && t.status === "queued" && t.attempt === 0);
  await sendTasks([
    ...unclaimed.map((t) => ({ runId, task: t.task })),
    // start tasks queued on the run without their records (engine/start.ts)
    ...(await messagesOnRun(run, tasks, unwrittenOnRun(run, tasks), new Date())),
  ]);
  await advance(runId);
}

export async function requireRun(runId: string): Promise<RunRecord> {
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
  const started = await planStart(run, workflow);
  const outcome = await transact([startTransition(runId, started, "pending"), ...started.writes]);
  if (!outcome.ok) {
    const status = String(reasonAt(outcome, keys.run(runId))?.item?.status ?? "unknown");
    throw new RunAlreadyStartedError(runId, status);
  }
  await launch({ ...run, ...started.fields, status: "running" }, started.tasks, workflow);
  return { runId, status: "running" };
}

/**
 * Cancels a run: one conditional transition to `cancelled`, after which no dispatch can succeed
 * (every dispatch holds only while the run is running). Queued executions are then cancelled;
 * running ones finish and are recorded, and start nothing. A run holding a concurrency-key lock
 * passes it on in the same transaction; a run waiting for one leaves the queue.
 */
export async function cancelRun(runId: string): Promise<RunSummary> {
  // the run or its lock moving on every try throws (ContentionError, 503): nothing was cancelled
  return retryOnContention(`cancel run ${runId} (it kept changing)`, async () => {
    const run = await requireRun(runId);
    if (isTerminal(run.status)) throw new RunAlreadyEndedError(runId, run.status);
    // a running run keeps its lock until its running actions ended (windDown)
    const lock = run.status === "running" ? undefined : await release(run);
    const now = new Date();
    const sweep = lookKept(run, run.status === "running", now);
    const outcome = await transact([
      {
        Update: {
          TableName: config.tableName(),
          Key: keys.run(runId),
          UpdateExpression: `SET #status = :cancelled, endedAt = :now${sweep.update}`,
          // closes: cancelling a run that ended, started or got its lock in the meantime
          ConditionExpression: "#status = :seen",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: {
            ":cancelled": "cancelled",
            ":seen": run.status,
            ":now": now.toISOString(),
            ...sweep.values,
          },
        },
      },
      historyEvent(runId, "RunCancelled"),
      ...(lock?.writes ?? []),
    ]);
    if (!outcome.ok) return lostRace(outcome.reasons); // the run or its lock moved: look again
    if (run.status === "running") await windDown({ ...run, status: "cancelled" });
    await launchPromoted(lock?.promoted);
    return { runId, status: "cancelled" as const };
  });
}

/**
 * Restarts a failed run from its failed and cancelled executions, keeping what succeeded (see
 * lib/engine/redrive.ts). Of concurrent redrives one wins; the others find the run running (409).
 * A run with a concurrency key takes its key again in the same transaction, or gets 409
 * `ConcurrencyKeyBusy` while another run holds it.
 */
export async function redriveRun(runId: string): Promise<RunSummary & { redriveCount: number }> {
  // the run, a task or the key moving on every try throws (ContentionError, 503): nothing was
  // redriven
  return retryOnContention(`redrive run ${runId} (it kept changing)`, async () => {
    const run = await requireRun(runId);
    const tasks = await readTasks(runId);
    const workflow = await getWorkflowVersion(run.workflow, run.version);
    const plan = await planRedrive(run, tasks, workflow);
    await point("redrive:before-commit", { runId });
    const outcome = await transact([...plan.writes, ...(await retake(run))]);
    if (!outcome.ok) return lostRace(outcome.reasons); // the run, a task or the key moved: look again
    await point("redrive:after-commit", { runId, redriveCount: plan.redriveCount });
    await sendTasks(
      [
        ...plan.queued.map((task) => ({ runId, task })),
        // queued on the run and never claimed (their messages lost, or cancelled by nobody): now
        ...(await messagesOnRun(run, tasks, plan.unwritten, new Date())),
      ],
      `redrive/${plan.redriveCount}`,
    );
    await advance(runId);
    return { runId, status: "running" as const, redriveCount: plan.redriveCount };
  });
}
