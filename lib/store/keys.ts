/**
 * The single-table layout. Everything of a run lives under one partition key, so a run's tasks and
 * events come back from one Query.
 *
 *   pk                      sk                    item
 *   WF#{name}               LATEST                pointer to the latest version and its hash
 *   WF#{name}               V#{000001}            one immutable definition version
 *   IDEM#{workflow}#{key}   IDEM                  Idempotency-Key of a run creation
 *   RUN#{runId}             RUN                   the run
 *   RUN#{runId}             TASK#{task}           a task execution (claimed, leased, settled)
 *   RUN#{runId}             EVT#{at}#{id}         one history event
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
  event: (runId: string, sortId: string): Key => ({ pk: `RUN#${runId}`, sk: `EVT#${sortId}` }),
  runPartition: (runId: string) => `RUN#${runId}`,
  taskPrefix: "TASK#",
  eventPrefix: "EVT#",
};
