/**
 * The import queue: base64 JSON messages (the Functions host's default encoding). Step messages carry
 * a job id and a step, never a secret, and an HMAC tag (`mac`, lib/jobs/mac.ts) over all they say: anyone
 * who may drop import requests on the queue can write a message shaped like a step, and only the app's own
 * are run. User requests dropped on the queue name credentials only.
 */
import type { QueueClient } from '@azure/storage-queue';
import { z } from 'zod';
import { ConfigError, type MessageKeys } from '../config.js';
import { traceFields } from '../telemetry/index.js';
import { MAC_PATTERN, macOf, verifyMac } from './mac.js';

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
  /** W3C traceparent of the span that sent it (only with telemetry on, lib/telemetry): the import's trace goes on. */
  tp: z.string().regex(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/).optional(),
  /** When it became visible on the queue (ms since the epoch; with `tp`): the queue wait metric. */
  at: z.number().int().min(0).optional(),
  /** The app's tag over the other fields (absent or wrong: the message is refused unread). */
  mac: z.string().regex(MAC_PATTERN).optional(),
});

export type StepMessage = z.infer<typeof stepMessageSchema>;

/**
 * What a step message's tag covers, in one fixed order: every field but the tag itself. The trace fields are
 * inside it too (a caller cannot graft its own trace onto an import), appended only when present, so a message
 * without them is signed exactly as before they existed.
 */
function stepContent(m: StepMessage): string {
  const trace = m.tp !== undefined || m.at !== undefined ? [m.tp ?? null, m.at ?? null] : [];
  return JSON.stringify([m.v, m.job, m.step, m.blob ?? null, m.from ?? null, m.digest ?? null, m.size ?? null, ...trace]);
}

/** The message with the app's tag (any tag it carried replaced). */
export function signStep(keys: MessageKeys, message: StepMessage): StepMessage {
  const { mac: _old, ...content } = message;
  return { ...content, mac: macOf(keys, 'queue-step', stepContent(content)) };
}

/** Whether the app wrote this step message (with MESSAGE_KEY, or MESSAGE_KEY_PREVIOUS). */
export function isAuthentic(keys: MessageKeys, message: StepMessage): boolean {
  return verifyMac(keys, 'queue-step', stepContent(message), message.mac);
}

/** The message keys, or a ConfigError saying how to set them (the service cannot queue a step without them). */
export function requireMessageKeys(keys: MessageKeys | undefined): MessageKeys {
  if (!keys) {
    throw new ConfigError('MESSAGE_KEY', 'is not set: the service authenticates its own queue messages with it; set it to base64 of 32 random bytes (openssl rand -base64 32; in Azure a Key Vault reference, which the template makes)');
  }
  return keys;
}

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

/** A queue whose step messages leave signed (the service's view of the queue). */
export class SigningQueue implements JobQueue {
  constructor(private readonly inner: JobQueue, private readonly keys: () => MessageKeys) {}

  send(message: StepMessage, delaySeconds?: number): Promise<void> {
    // the active span's trace context (none without telemetry: the message is as it always was)
    const { tp: _tp, at: _at, ...content } = message;
    return this.inner.send(signStep(this.keys(), { ...content, ...traceFields(delaySeconds) }), delaySeconds);
  }

  sendPoison(message: unknown): Promise<void> {
    return this.inner.sendPoison(message);
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
