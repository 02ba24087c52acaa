/**
 * The import queue: base64 JSON messages (the Functions host's default encoding). Step messages carry
 * a job id and a step, never a secret; user requests dropped on the queue name credentials only.
 */
import type { QueueClient } from '@azure/storage-queue';
import { z } from 'zod';

/**
 * `plan` → `fanout` (enqueues the blob steps of indexes `from`… in bounded batches) → `blob` (one blob,
 * its descriptor carried along so the step reads no plan) → `finalize`.
 */
export const stepMessageSchema = z.strictObject({
  v: z.literal(1),
  job: z.string().uuid(),
  step: z.enum(['plan', 'fanout', 'blob', 'finalize']),
  blob: z.number().int().min(0).optional(),
  from: z.number().int().min(0).optional(),
  digest: z.string().regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/).max(256).optional(),
  size: z.number().int().min(0).optional(),
});

export type StepMessage = z.infer<typeof stepMessageSchema>;

export interface JobQueue {
  /** Enqueues a step, visible after `delaySeconds` (Azure Storage queues take up to 7 days). */
  send(message: StepMessage, delaySeconds?: number): Promise<void>;
  /** Puts a message that can never succeed where operators look for failed ones. */
  sendPoison(message: unknown): Promise<void>;
}

export function encodeMessage(message: unknown): string {
  return Buffer.from(JSON.stringify(message), 'utf8').toString('base64');
}

export class StorageJobQueue implements JobQueue {
  private ready: Promise<unknown> | undefined;

  constructor(private readonly queue: QueueClient, private readonly poison: QueueClient) {}

  private ensure(): Promise<unknown> {
    this.ready ??= Promise.all([this.queue.createIfNotExists(), this.poison.createIfNotExists()]).catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  async send(message: StepMessage, delaySeconds = 0): Promise<void> {
    await this.ensure();
    await this.queue.sendMessage(encodeMessage(message), { visibilityTimeout: Math.max(0, Math.round(delaySeconds)) });
  }

  async sendPoison(message: unknown): Promise<void> {
    await this.ensure();
    await this.poison.sendMessage(encodeMessage(message));
  }
}

/** In-process queue for unit tests: records what was sent. */
export class MemoryJobQueue implements JobQueue {
  readonly sent: { message: StepMessage; delaySeconds: number }[] = [];
  readonly poisoned: unknown[] = [];

  async send(message: StepMessage, delaySeconds = 0): Promise<void> {
    this.sent.push({ message, delaySeconds });
  }

  async sendPoison(message: unknown): Promise<void> {
    this.poisoned.push(message);
  }

  /** Takes the messages sent so far (FIFO). */
  drain(): StepMessage[] {
    return this.sent.splice(0).map((s) => s.message);
  }
}
