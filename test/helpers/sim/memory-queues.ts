/**
 * In-memory SQS FIFO queues for the deterministic simulation: they take the engine's sends
 * (`SendMessage`, `SendMessageBatch`), drop a message whose deduplication id was seen in the
 * last five minutes (of the simulation's clock), and hold each message with its visibility. The
 * simulation decides what is delivered when; it does not keep FIFO order within a group, which
 * only makes the schedules it explores more adversarial (the engine does not rely on it).
 */
import { SendMessageBatchCommand, SendMessageCommand } from "@aws-sdk/client-sqs";

export const DEDUP_WINDOW_MS = 5 * 60 * 1000;

export interface QueuedMessage {
  id: number;
  queueUrl: string;
  body: string;
  group: string;
  dedupId: string;
  /** The clock (ms) from which the message may be delivered. */
  visibleAt: number;
  deliveries: number;
}

export class MemoryQueues {
  private nextId = 1;
  private readonly dedup = new Map<string, number>();
  readonly messages = new Map<number, QueuedMessage>();
  /** Every message body ever accepted, per queue, in order (for replays). */
  readonly sent: { queueUrl: string; body: string }[] = [];

  constructor(
    private readonly now: () => number,
    /** Queues whose messages are accepted and dropped (the sweeper's: the schedule drives it). */
    private readonly dropped: string[] = [],
  ) {}

  async send(command: unknown): Promise<unknown> {
    if (command instanceof SendMessageCommand) {
      const { QueueUrl, MessageBody, MessageGroupId, MessageDeduplicationId } = command.input;
      if (this.dropped.includes(QueueUrl as string)) return { MessageId: "dropped" };
      this.enqueue(
        QueueUrl as string,
        MessageBody as string,
        MessageGroupId as string,
        MessageDeduplicationId as string,
      );
      return { MessageId: "m" };
    }
    if (command instanceof SendMessageBatchCommand) {
      const { QueueUrl, Entries = [] } = command.input;
      for (const e of Entries)
        this.enqueue(
          QueueUrl as string,
          e.MessageBody as string,
          e.MessageGroupId as string,
          e.MessageDeduplicationId as string,
        );
      return { Successful: Entries.map((e) => ({ Id: e.Id })), Failed: [] };
    }
    throw new Error(`MemoryQueues: unsupported command ${(command as object).constructor.name}`);
  }

  /** Puts a message on the queue, unless its dedup id was accepted within the window. */
  enqueue(queueUrl: string, body: string, group: string, dedupId: string): void {
    if (!group || !dedupId) throw new Error("FIFO queues need MessageGroupId and MessageDeduplicationId");
    const now = this.now();
    const seen = this.dedup.get(`${queueUrl}/${dedupId}`);
    if (seen !== undefined && now - seen < DEDUP_WINDOW_MS) return;
    this.dedup.set(`${queueUrl}/${dedupId}`, now);
    const id = this.nextId++;
    this.messages.set(id, { id, queueUrl, body, group, dedupId, visibleAt: now, deliveries: 0 });
    this.sent.push({ queueUrl, body });
  }

  visible(queueUrl?: string): QueuedMessage[] {
    const now = this.now();
    return [...this.messages.values()].filter(
      (m) => m.visibleAt <= now && (queueUrl === undefined || m.queueUrl === queueUrl),
    );
  }

  /** Hands a message out: it stays on the queue, invisible for `seconds`. */
  receive(message: QueuedMessage, seconds: number): void {
    message.visibleAt = this.now() + seconds * 1000;
    message.deliveries++;
  }

  delete(message: QueuedMessage): void {
    this.messages.delete(message.id);
  }

  /** The earliest time a message now invisible becomes visible. */
  nextVisibleAt(): number | undefined {
    const times = [...this.messages.values()].map((m) => m.visibleAt);
    return times.length > 0 ? Math.min(...times) : undefined;
  }
}
