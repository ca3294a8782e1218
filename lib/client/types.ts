/**
 * The HTTP API's request and response bodies, as the client sees them. Wherever the server has a
 * type for a body, it is that type (imported as a type only: nothing of the server is loaded), so
 * the client and the API cannot drift apart.
 */
import type { WorkflowDefinition } from "../definition/types";
import type { CallbackBody } from "../engine/callback-body";
import type { CallbackAnswer } from "../engine/callback-complete";
import type { Problem } from "../errors";
import type { RunList, RunListEntry, WorkflowListEntry } from "../listing";
import type { RunStatus } from "../model/run-status";
import type { Registration, VersionListEntry } from "../workflows";

export type {
  CallbackWait,
  ExecutionView,
  FanOutView,
  RunView,
  SlotWait,
  TaskDetail,
  TaskView,
} from "../run-view";
export type { EventType, RunEvent } from "../store/events";
export type {
  CallbackAnswer,
  CallbackBody,
  Problem,
  Registration,
  RunStatus,
  VersionListEntry,
  WorkflowDefinition,
  WorkflowListEntry,
};

/** A run as `GET /runs` lists it: what tells runs apart, without input, output or tasks. */
export type RunSummary = RunListEntry;
/** A page of `GET /runs`; `nextCursor` is absent on the last page. */
export type RunPage = RunList;

/** How a run ended; `waitForRun` returns once the run has one of these. */
export {
  isTerminal,
  RUN_STATUSES,
  TERMINAL_RUN_STATUSES as TERMINAL_STATUSES,
  type TerminalRunStatus as TerminalStatus,
} from "../model/run-status";

/** `POST /workflows/{name}/runs`, `/trigger`, `/cancel`: the run's id and its status now. */
export interface RunCreated {
  runId: string;
  status: RunStatus;
}

/** `POST /workflows/{name}/runs`: also whether this request created the run (false: a replayed key). */
export interface CreatedRun extends RunCreated {
  created: boolean;
}

export interface CreateRunOptions {
  /** The run's input (default `null`), checked against the workflow's `input` schema. */
  input?: unknown;
  /** `false` creates the run `pending`, for a later `triggerRun`. Default `true`. */
  start?: boolean;
  /** The same key (with the same input) again gives the same run, for 7 days. */
  idempotencyKey?: string;
}

export interface RedrivenRun extends RunCreated {
  redriveCount: number;
}

/** `GET /workflows/{name}`: the latest version with its definition. */
export interface WorkflowVersionView {
  name: string;
  version: number;
  createdAt: string;
  definition: WorkflowDefinition;
}

export interface WorkflowVersions {
  name: string;
  versions: VersionListEntry[];
}

/** `GET /runs` filters; every one optional and combinable. */
export interface ListRunsQuery {
  workflow?: string;
  status?: RunStatus;
  /** 1 to 100 (the API's default: 20). */
  limit?: number;
  /** A page's `nextCursor`, with the same filters. */
  cursor?: string;
}

/** The API's error body: `{"error": {code, message, details?, ...fields}}`. */
export interface ApiErrorBody {
  error: {
    code: string;
    message: string;
    /** Every problem, e.g. `{path, message}` of an invalid definition. */
    details?: unknown[];
    [field: string]: unknown;
  };
}

/** The error codes the API answers with (functions/api/errors.ts, and 500's InternalError). */
export const API_ERROR_CODES = [
  "MalformedBody",
  "InvalidRequest",
  "InvalidQuery",
  "InvalidWorkflow",
  "InvalidInput",
  "InputTooLarge",
  "WorkflowNotFound",
  "RunNotFound",
  "TaskNotFound",
  "CallbackNotFound",
  "RouteNotFound",
  "AssetNotFound",
  "MethodNotAllowed",
  "IdempotencyKeyReused",
  "RunAlreadyStarted",
  "RunAlreadyEnded",
  "ConcurrencyKeyBusy",
  "RunNotRedrivable",
  "CallbackAlreadyCompleted",
  "Contention",
  "InternalError",
] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

/**
 * What the client itself reports: `NetworkError` (no answer: the API is not reachable),
 * `UnexpectedResponse` (an answer that is not the API's: a proxy's or a gateway's page, a 403 of
 * the IAM authorizer...), `WaitTimedOut` (`waitForRun` gave up; the run goes on).
 */
export type ClientErrorCode = "NetworkError" | "UnexpectedResponse" | "WaitTimedOut";

export type ErrorCode = ApiErrorCode | ClientErrorCode;
