/**
 * The single-table layout. Everything of a run lives under one partition key, so a run's tasks and
 * events come back from one Query.
 *
 *   pk                      sk                    item
 *   WF#{name}               LATEST                pointer to the latest version and its hash
 *   WF#{name}               V#{000001}            one immutable definition version
 *   IDEM#{workflow}#{key}   IDEM                  Idempotency-Key of a run creation
 *   RUN#{runId}             RUN                   the run
 *   RUN#{runId}             TASK#{task}           a task execution, or the parent of a with-items task
 *   RUN#{runId}             ITEM#{task}#{000042}  one with-items item execution
 *   RUN#{runId}             CHUNK#{task}#{n}#{k}  the inputs of items k·n to k·n+n-1 of a with-items task
 *   RUN#{runId}             EVT#{at}#{id}         one history event
 *   LOCK#{workflow}#{key}   LOCK                  a concurrency-key lock: holder and waiting runs
 *   LIMIT#{workflow}#{act}  LIMIT                 an action's concurrency limit: slots taken, executions waiting
 *   SWEEPER                 TICK                  the sweeper's chain of ticks: when the next tick is due
 *
 * The `list` index (listPk, listSk; summary attributes projected) lists what users browse:
 *
 *   listPk                  listSk                item
 *   RUNS#{workflow}         {createdAt}#{runId}   a run (RUN), newest last
 *   WORKFLOWS               {name}                a workflow's latest-version pointer (LATEST)
 */
export type Key = { pk: string; sk: string };

export const keys = {
  workflowLatest: (name: string): Key => ({ pk: `WF#${name}`, sk: "LATEST" }),
  workflowVersion: (name: string, version: number): Key => ({
    pk: `WF#${name}`,
    sk: `V#${String(version).padStart(6, "0")}`,
  }),
  idempotency: (workflow: string, key: string): Key => ({ pk: `IDEM#${workflow}#${key}`, sk: "IDEM" }),
  run: (runId: string): Key => ({ pk: `RUN#${runId}`, sk: "RUN" }),
  task: (runId: string, task: string): Key => ({ pk: `RUN#${runId}`, sk: `TASK#${task}` }),
  item: (runId: string, task: string, index: number): Key => ({
    pk: `RUN#${runId}`,
    sk: `ITEM#${task}#${String(index).padStart(6, "0")}`,
  }),
  /** Chunk `k` of a with-items task's item inputs, `size` items a chunk (engine/items.ts). */
  chunk: (runId: string, task: string, size: number, k: number): Key => ({
    pk: `RUN#${runId}`,
    sk: `CHUNK#${task}#${size}#${String(k).padStart(6, "0")}`,
  }),
  /** The key of an execution: a plain task, or one item of a with-items task. */
  execution: (e: { runId: string; task: string; item?: number }): Key =>
    e.item === undefined ? keys.task(e.runId, e.task) : keys.item(e.runId, e.task, e.item),
  lock: (workflow: string, key: string): Key => ({ pk: `LOCK#${workflow}#${key}`, sk: "LOCK" }),
  limit: (workflow: string, action: string): Key => ({ pk: `LIMIT#${workflow}#${action}`, sk: "LIMIT" }),
  sweeperTick: { pk: "SWEEPER", sk: "TICK" } as Key,
  event: (runId: string, sortId: string): Key => ({ pk: `RUN#${runId}`, sk: `EVT#${sortId}` }),
  runPartition: (runId: string) => `RUN#${runId}`,
  /** A run's place in the `list` index: its workflow's runs, in order of creation. */
  runListing: (run: { workflow: string; createdAt: string; runId: string }) => ({
    listPk: keys.runsOf(run.workflow),
    listSk: `${run.createdAt}#${run.runId}`,
  }),
  runsOf: (workflow: string) => `RUNS#${workflow}`,
  /** A workflow's place in the `list` index (on its LATEST pointer). */
  workflowListing: (name: string) => ({ listPk: keys.workflowsList, listSk: name }),
  workflowsList: "WORKFLOWS",
  taskPrefix: "TASK#",
  itemPrefix: (task: string) => `ITEM#${task}#`,
  eventPrefix: "EVT#",
};
