/**
 * The roles of serverless.yml, enforced on the local stack (infra/local/iam.ts): what the handlers
 * do on a run's path is granted, and a call a role does not grant is refused, as AWS would.
 */
import { randomUUID } from "node:crypto";
import { DeleteCommand, GetCommand } from "@aws-sdk/lib-dynamodb";
import type { ScheduledEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { handler as sweeper } from "../../functions/sweeper";
import { db } from "../../lib/clients";
import { config } from "../../lib/config";
import { keys } from "../../lib/store/keys";
import { register, waitForRun } from "../helpers/runs";
import { useLocalStack } from "../helpers/stack";

/** The sweeper as deployed, but on its schedule's call it first deletes an item (its role grants no DeleteItem). */
const deletingSweeper = async (event: ScheduledEvent | never, context: never) => {
  if ("source" in event && event.source === "test.delete")
    await db().send(new DeleteCommand({ TableName: config.tableName(), Key: keys.sweeperTick }));
  return sweeper(event, context);
};

const stack = useLocalStack({ handlers: { sweeper: deletingSweeper as never } });

describe("the roles of serverless.yml on the local stack", () => {
  it("grant every call of a run whose worker dispatches its successor and runs it, and of the sweeper", async () => {
    const name = `iam-${randomUUID().slice(0, 8)}`;
    await register(stack, {
      name,
      tasks: {
        a: { action: "core.echo", next: [{ do: ["b", "c"] }] },
        b: { action: "core.echo" },
        c: { action: "core.echo" },
      },
    });
    const { runId } = await stack.client.createRun(name, {});
    expect(await waitForRun(stack, runId)).toMatchObject({ status: "succeeded" });
    await expect
      .poll(() =>
        db()
          .send(new GetCommand({ TableName: config.tableName(), Key: keys.sweeperTick }))
          .then((r) => r.Item),
      )
      .toBeDefined();
    expect(stack.stack.denied).toEqual([]);
  });

  it("refuse a call the function's role does not grant, naming the function, action and resource", async () => {
    await expect(stack.stack.invoke("sweeper", { source: "test.delete" })).rejects.toThrow(
      /sweeper is not allowed dynamodb:DeleteItem on arn:aws:dynamodb:.*:table\//,
    );
    expect(stack.stack.denied).toEqual([
      { fn: "sweeper", action: "dynamodb:DeleteItem", resource: expect.stringMatching(/table\//) },
    ]);
    stack.stack.denied.splice(0); // expected here: the fixture fails a file whose stack refused a call
  });
});
