/**
 * The import queue: base64 JSON messages (the Functions host's default encoding). Step messages carry
 * a job id and a step, never a secret, and an HMAC tag (`mac`, lib/store/mac.ts) over all they say: anyone
 * who may drop import requests on the queue can write a message shaped like a step, and only the app's own
 * are run. User requests dropped on the queue name credentials only.
 */
import type { QueueClient } from '@azure/storage-queue';
import * as z from 'zod';
import { ConfigError, type MessageKeys } from '../config.js';
import { traceFields } from '../telemetry/index.js';
import { MAC_PATTERN, macOf, verifyMac } from './mac.js';

const JOB = z.string().uuid();
const INDEX = z.number().int().min(0);
const DIGEST = z
  .string()
  .regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/)
  .max(256);

/** What every step message carries besides its step's own fields. */
const common = {
  v: z.literal(1),
  job: JOB,
  /** W3C traceparent of the span that sent it (only with telemetry on, lib/telemetry): the import's trace goes on. */
  tp: z
    .string()
    .regex(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/)
    .optional(),
  /** When it became visible on the queue (ms since the epoch; with `tp`): the queue wait metric. */
  at: z.number().int().min(0).optional(),
  /** The app's tag over the other fields (absent or wrong: the message is refused unread). */
  mac: z.string().regex(MAC_PATTERN).optional(),
};

/**
 * A message shaped like a step, whatever its step: the fields any step may carry, each optional. What the tag
 * covers (`stepContent`), and how a message is told from an import request dropped on the queue. The app writes
 * only messages that are also a `stepMessageSchema`; one that is shaped like a step and not that is refused.
 */
export const stepShapeSchema = z.strictObject({
  v: common.v,
  job: common.job,
  step: z.enum(['plan', 'fanout', 'blob', 'finalize']),
  blob: INDEX.optional(),
  from: INDEX.optional(),
  digest: DIGEST.optional(),
  size: INDEX.optional(),
  tp: common.tp,
  at: common.at,
  mac: common.mac,
});

export type StepShape = z.infer<typeof stepShapeSchema>;

/**
 * `plan` → `fanout` (enqueues the blob steps of indexes `from`… in bounded batches) → `blob` (one blob,
 * its descriptor carried along so the step reads no plan) → `finalize`. Each step carries exactly its own fields
 * (the field order is the wire order, as the app has always written them).
 */
export const stepMessageSchema = z.discriminatedUnion('step', [
  z.strictObject({
    v: common.v,
    job: common.job,
    step: z.literal('plan'),
    tp: common.tp,
    at: common.at,
    mac: common.mac,
  }),
  z.strictObject({
    v: common.v,
    job: common.job,
    step: z.literal('fanout'),
    from: INDEX,
    tp: common.tp,
    at: common.at,
    mac: common.mac,
  }),
  z.strictObject({
    v: common.v,
    job: common.job,
    step: z.literal('blob'),
    blob: INDEX,
    digest: DIGEST,
    size: INDEX,
    tp: common.tp,
    at: common.at,
    mac: common.mac,
  }),
  z.strictObject({
    v: common.v,
    job: common.job,
    step: z.literal('finalize'),
    tp: common.tp,
    at: common.at,
    mac: common.mac,
  }),
]);

export type StepMessage = z.infer<typeof stepMessageSchema>;
export type StepName = StepMessage['step'];
/** The message of one step. */
export type StepOf<S extends StepName> = Extract<StepMessage, { step: S }>;

/**
 * What a step message's tag covers, in one fixed order: every field but the tag itself. The trace fields are
 * inside it too (a caller cannot graft its own trace onto an import), appended only when present, so a message
 * without them is signed exactly as before they existed. A field a step does not have is null, as it always was.
 */
function stepContent(m: StepShape): string {
  const trace = m.tp !== undefined || m.at !== undefined ? [m.tp ?? null, m.at ?? null] : [];
  return JSON.stringify([
    m.v,
    m.job,
    m.step,
    m.blob ?? null,
    m.from ?? null,
    m.digest ?? null,
    m.size ?? null,
    ...trace,
  ]);
}

/** The message with the app's tag (any tag it carried replaced). */
export function signStep<M extends StepMessage>(keys: MessageKeys, message: M): M {
  const { mac: _old, ...content } = message;
  return { ...content, mac: macOf(keys, 'queue-step', stepContent(content)) } as M;
}

/** Whether the app wrote this step message (with MESSAGE_KEY, or MESSAGE_KEY_PREVIOUS). */
export function isAuthentic(keys: MessageKeys, message: StepShape): boolean {
  return verifyMac(keys, 'queue-step', stepContent(message), message.mac);
}

/** What a queue message is, read as a step. */
export type StepReading =
  /** Not shaped like a step at all (an import request, or anything else). */
  | { readonly kind: 'other' }
  /** Shaped like a step, and refused unread: not the app's tag, or fields its step does not have. */
  | {
      readonly kind: 'refused';
      readonly shape: StepShape;
      readonly code: 'STEP_NOT_AUTHENTIC' | 'STEP_NOT_IN_PLAN';
      readonly why: string;
    }
  | { readonly kind: 'step'; readonly message: StepMessage };

/**
 * Reads a queue message as a step: its tag is checked first (over what it says, whatever its step), then that its
 * step carries exactly that step's fields — the app writes no other, so one that does not is refused even when its
 * tag is right (a leaked key).
 */
export function readStep(keys: MessageKeys, raw: unknown): StepReading {
  const shape = stepShapeSchema.safeParse(raw);
  if (!shape.success) return { kind: 'other' };
  if (!isAuthentic(keys, shape.data)) {
    return {
      kind: 'refused',
      shape: shape.data,
      code: 'STEP_NOT_AUTHENTIC',
      why: "it does not carry the app's tag for what it says (MESSAGE_KEY)",
    };
  }
  const step = stepMessageSchema.safeParse(raw);
  if (!step.success) {
    const fields = step.error.issues
      .map((i) => (i.code === 'unrecognized_keys' ? i.keys.join(', ') : i.path.join('.')))
      .join(', ');
    return {
      kind: 'refused',
      shape: shape.data,
      code: 'STEP_NOT_IN_PLAN',
      why: `a ${shape.data.step} step has no such message: ${fields} (the app writes a plan and a finalize step with no field of their own, a fanout with from, a blob with blob, digest and size)`,
    };
  }
  return { kind: 'step', message: step.data };
}

/** The message keys, or a ConfigError saying how to set them (the service cannot queue a step without them). */
export function requireMessageKeys(keys: MessageKeys | undefined): MessageKeys {
  if (!keys) {
    throw new ConfigError(
      'MESSAGE_KEY',
      'is not set: the service authenticates its own queue messages with it; set it to base64 of 32 random bytes (openssl rand -base64 32; in Azure a Key Vault reference, which the template makes)',
    );
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

  constructor(
    private readonly queue: QueueClient,
    private readonly poison: QueueClient,
  ) {}

  private ensure(): Promise<unknown> {
    this.ready ??= Promise.all([this.queue.createIfNotExists(), this.poison.createIfNotExists()]).catch(
      (err: unknown) => {
        this.ready = undefined;
        throw err;
      },
    );
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
  constructor(
    private readonly inner: JobQueue,
    private readonly keys: () => MessageKeys,
  ) {}

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
