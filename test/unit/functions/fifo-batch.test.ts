/** functions/fifo-batch.ts: message groups side by side, each group in order, a failure holds back the rest of its group only. */
import type { SQSRecord } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { handleFifoBatch } from "../../../functions/fifo-batch";
import { lambdaContext, sqsEvent } from "../../helpers/lambda-events";

/** Records of the given groups, bodies their index. */
function batchOf(groups: string[]) {
  const event = sqsEvent(groups.map((_, i) => i));
  event.Records.forEach((r, i) => {
    r.attributes.MessageGroupId = groups[i] as string;
  });
  return event;
}
const indexOf = (record: SQSRecord) => Number(record.body);

describe("handleFifoBatch", () => {
  it("handles the groups side by side: each group's first record starts before any finishes", async () => {
    const event = batchOf(["a", "b", "c"]);
    let started = 0;
    let release!: () => void;
    const allStarted = new Promise<void>((r) => {
      release = r;
    });
    const response = await handleFifoBatch(event, lambdaContext, async () => {
      if (++started === 3) release();
      // a barrier: resolves only once all three groups are in their handler at once
      await allStarted;
    });
    expect(started).toBe(3);
    expect(response.batchItemFailures).toEqual([]);
  });

  it("handles a group's records one after the other, in order", async () => {
    const event = batchOf(["a", "a", "a", "b"]);
    const order: string[] = [];
    await handleFifoBatch(event, lambdaContext, async (record) => {
      const group = record.attributes.MessageGroupId;
      order.push(`${group}${indexOf(record)}+`);
      await new Promise((r) => setTimeout(r, 5));
      order.push(`${group}${indexOf(record)}-`);
    });
    const ofA = order.filter((o) => o.startsWith("a"));
    expect(ofA).toEqual(["a0+", "a0-", "a1+", "a1-", "a2+", "a2-"]);
  });

  it("reports a failed record with the later records of its group; other groups and earlier records go on", async () => {
    const event = batchOf(["a", "a", "a", "b", "b"]);
    const handled: number[] = [];
    const response = await handleFifoBatch(event, lambdaContext, async (record, partition) => {
      handled.push(indexOf(record));
      if (indexOf(record) === 1) {
        expect(partition.map(indexOf)).toEqual([0, 1, 2]);
        throw new Error("lost a race");
      }
    });
    expect(handled.sort()).toEqual([0, 1, 3, 4]);
    const failed = response.batchItemFailures.map((f) => Number(f.itemIdentifier.replace(/\D/g, "")));
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(
      [1, 2].map((i) => event.Records[i]?.messageId),
    );
    expect(failed).toHaveLength(2);
  });

  it("partitions by the key it is given: records of one key in order, though their groups differ", async () => {
    const event = batchOf(["r1/0", "r2/0", "r1/1"]);
    const seen: string[] = [];
    await handleFifoBatch(
      event,
      lambdaContext,
      async (record, partition) => {
        seen.push(`${indexOf(record)}:${partition.map(indexOf).join(",")}`);
      },
      (record) => (record.attributes.MessageGroupId as string).split("/")[0] as string,
    );
    expect(seen.sort()).toEqual(["0:0,2", "1:1", "2:0,2"]);
  });
});
