/**
 * lib/listing.ts against an in-memory table and its keys-only `list` index (fakes of Query, with
 * DynamoDB's `Limit` and `LastEvaluatedKey`, and of BatchGetItem, which leaves some keys
 * unprocessed): paging through runs of many workflows, with or without filters, hands out every
 * matching run once, newest first, however small the pages and however little each page may read.
 */
import "../helpers/unit-env";
import {
  BatchGetCommand,
  type BatchGetCommandInput,
  QueryCommand,
  type QueryCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import { db } from "../../lib/clients";
import { OnceflowError } from "../../lib/errors";
import { listRuns, listWorkflows } from "../../lib/listing";
import { keys } from "../../lib/store/keys";

const dynamo = mockClient(db());
let index: Record<string, unknown>[] = [];

/** Query on the `list` index, as DynamoDB answers it. */
function query(input: QueryCommandInput) {
  const values = input.ExpressionAttributeValues ?? {};
  const before = values[":before"] as string | undefined;
  const start = input.ExclusiveStartKey?.listSk as string | undefined;
  const partition = index
    .filter((e) => e.listPk === values[":pk"] && (before === undefined || (e.listSk as string) < before))
    .sort((a, b) => ((a.listSk as string) < (b.listSk as string) ? -1 : 1));
  if (input.ScanIndexForward === false) partition.reverse();
  const from = start === undefined ? 0 : partition.findIndex((e) => e.listSk === start) + 1;
  const limit = input.Limit ?? Number.POSITIVE_INFINITY;
  const read = partition.slice(from, from + limit);
  const more = from + read.length < partition.length;
  const last = read[read.length - 1];
  const keysOnly = (e: Record<string, unknown>) => ({
    pk: e.pk,
    sk: e.sk,
    listPk: e.listPk,
    listSk: e.listSk,
  });
  return {
    Items: read.map(keysOnly),
    ScannedCount: read.length,
    ...(more && last ? { LastEvaluatedKey: keysOnly(last) } : {}),
  };
}

/** BatchGetItem: the items asked for, their projected attributes only; every third key left unprocessed. */
let batchGets = 0;
function batchGet(input: BatchGetCommandInput) {
  const [[table, request]] = Object.entries(input.RequestItems ?? {}) as [
    [
      string,
      {
        Keys: Record<string, unknown>[];
        ProjectionExpression: string;
        ExpressionAttributeNames: Record<string, string>;
      },
    ],
  ];
  const wanted = request.ProjectionExpression.split(", ").map(
    (p) => request.ExpressionAttributeNames[p.split(".")[0] as string] ?? p.split(".")[0],
  );
  const unprocessed = batchGets++ % 3 === 2 ? request.Keys.slice(-1) : [];
  const items = request.Keys.filter((k) => !unprocessed.includes(k))
    .map((k) => index.find((e) => e.pk === k.pk && e.sk === k.sk))
    .filter((e) => e !== undefined)
    .map((e) => Object.fromEntries(Object.entries(e).filter(([name]) => wanted.includes(name))));
  return {
    Responses: { [table]: items },
    ...(unprocessed.length ? { UnprocessedKeys: { [table]: { ...request, Keys: unprocessed } } } : {}),
  };
}

beforeEach(() => {
  dynamo.reset();
  index = [];
  dynamo.on(QueryCommand).callsFake(query);
  dynamo.on(BatchGetCommand).callsFake(batchGet);
});

const STATUSES = ["running", "succeeded", "failed"] as const;

function addRuns(runs: { workflow: string; status: (typeof STATUSES)[number]; second: number }[]) {
  const workflows = new Set(runs.map((r) => r.workflow));
  for (const name of workflows)
    index.push({ ...keys.workflowLatest(name), ...keys.workflowListing(name), name, version: 1 });
  runs.forEach((r, i) => {
    const createdAt = new Date(Date.UTC(2026, 0, 1, 0, 0, r.second)).toISOString();
    const runId = `run-${String(i).padStart(4, "0")}`;
    index.push({
      ...keys.run(runId),
      ...keys.runListing({ workflow: r.workflow, createdAt, runId }),
      runId,
      workflow: r.workflow,
      version: 1,
      status: r.status,
      createdAt,
      ...(r.status === "failed" ? { error: { code: "Boom", message: "x" } } : {}),
    });
  });
}

/** Every page of a query, following `nextCursor`. */
async function allPages(params: Record<string, string>, examinePerPartition?: number) {
  const runs = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await listRuns({ ...params, ...(cursor ? { cursor } : {}) }, { examinePerPartition });
    expect(page.runs.length).toBeLessThanOrEqual(Number(params.limit ?? 20));
    runs.push(...page.runs);
    cursor = page.nextCursor;
    if (!cursor) return runs;
  }
  throw new Error("the cursor never ended");
}

const newestFirst = (a: { createdAt: string; runId: string }, b: { createdAt: string; runId: string }) =>
  `${b.createdAt}#${b.runId}`.localeCompare(`${a.createdAt}#${a.runId}`);

describe("listRuns", () => {
  it("hands out every matching run once, newest first, whatever the page size, filters and read budget", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            workflow: fc.constantFrom("a", "b", "c"),
            status: fc.constantFrom(...STATUSES),
            second: fc.nat(50),
          }),
          { maxLength: 60 },
        ),
        fc.integer({ min: 1, max: 7 }),
        fc.option(fc.constantFrom("a", "b", "c"), { nil: undefined }),
        fc.option(fc.constantFrom(...STATUSES), { nil: undefined }),
        fc.integer({ min: 1, max: 12 }),
        async (runs, limit, workflow, status, budget) => {
          index = [];
          addRuns(runs);
          const params: Record<string, string> = { limit: String(limit) };
          if (workflow) params.workflow = workflow;
          if (status) params.status = status;
          const listed = await allPages(params, budget);
          const expected = index
            .filter(
              (e) => e.runId && (!workflow || e.workflow === workflow) && (!status || e.status === status),
            )
            .map((e) => ({ runId: e.runId as string, createdAt: e.createdAt as string }))
            .sort(newestFirst);
          expect(listed.map((r) => r.runId)).toEqual(expected.map((r) => r.runId));
        },
      ),
      { numRuns: 150 },
    );
  });

  it("summarizes each run, with its error's code", async () => {
    addRuns([{ workflow: "a", status: "failed", second: 1 }]);
    const { runs, nextCursor } = await listRuns({});
    expect(runs).toEqual([
      {
        runId: "run-0000",
        workflow: "a",
        version: 1,
        status: "failed",
        createdAt: "2026-01-01T00:00:01.000Z",
        errorCode: "Boom",
      },
    ]);
    expect(nextCursor).toBeUndefined();
  });

  it.each([
    [{ limit: "0" }, "limit"],
    [{ limit: "101" }, "limit"],
    [{ limit: "2.5" }, "limit"],
    [{ limit: "ten" }, "limit"],
    [{ status: "done" }, "status"],
    [{ workflow: "no spaces" }, "workflow"],
    [{ cursor: "not-a-cursor" }, "cursor"],
    [{ sort: "asc" }, "sort"],
  ])("refuses %o with InvalidQuery naming %s, reading nothing", async (params, path) => {
    const error = await listRuns(params).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OnceflowError);
    expect(error).toMatchObject({ code: "InvalidQuery", details: [expect.objectContaining({ path })] });
    expect(dynamo.commandCalls(QueryCommand)).toHaveLength(0);
  });

  it("refuses a cursor made for other filters", async () => {
    addRuns(Array.from({ length: 5 }, (_, i) => ({ workflow: "a", status: "running" as const, second: i })));
    const { nextCursor } = await listRuns({ workflow: "a", limit: "2" });
    expect(nextCursor).toBeDefined();
    await expect(listRuns({ workflow: "a", limit: "2", cursor: nextCursor })).resolves.toMatchObject({
      runs: [expect.anything(), expect.anything()],
    });
    await expect(listRuns({ status: "running", cursor: nextCursor })).rejects.toMatchObject({
      code: "InvalidQuery",
    });
  });
});

describe("listWorkflows", () => {
  it("lists each workflow once, by name, with its latest version", async () => {
    index.push(
      {
        ...keys.workflowLatest("b"),
        ...keys.workflowListing("b"),
        name: "b",
        version: 3,
        hash: "h",
        createdAt: "2026-01-02T00:00:00.000Z",
      },
      { ...keys.workflowLatest("a"), ...keys.workflowListing("a"), name: "a", version: 1, hash: "h" },
    );
    expect(await listWorkflows()).toEqual([
      { name: "a", version: 1 },
      { name: "b", version: 3, createdAt: "2026-01-02T00:00:00.000Z" },
    ]);
  });
});
