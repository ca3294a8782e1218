import { processPartialResponse, SqsFifoPartialProcessorAsync } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";

/** Handles one record; `partition` is the records of the batch handled in order with it. */
export type RecordHandler = (record: SQSRecord, partition: SQSRecord[]) => Promise<void>;

/**
 * One SQS FIFO batch, the way both queue handlers take it: the batch is split into partitions
 * (by default its message groups), partitions are handled side by side, and each partition's
 * records one after the other by Powertools' FIFO processor. A record that fails is reported in
 * `batchItemFailures` with every later record of its message group, which FIFO must not hand out
 * before it; other groups go on.
 */
export async function handleFifoBatch(
  event: SQSEvent,
  context: Context,
  handle: RecordHandler,
  partitionOf: (record: SQSRecord) => string = (record) => record.attributes.MessageGroupId ?? "",
): Promise<SQSBatchResponse> {
  const partitions = new Map<string, SQSRecord[]>();
  for (const record of event.Records) {
    const key = partitionOf(record);
    partitions.set(key, [...(partitions.get(key) ?? []), record]);
  }
  const responses = await Promise.all(
    [...partitions.values()].map((records) =>
      processPartialResponse(
        { Records: records },
        (record: SQSRecord) => handle(record, records),
        // one processor per partition: it holds that partition's state
        new SqsFifoPartialProcessorAsync(),
        { context, skipGroupOnError: true, throwOnFullBatchFailure: false },
      ),
    ),
  );
  return { batchItemFailures: responses.flatMap((response) => response.batchItemFailures) };
}
