/** An ImportService on memory storage, for handler and step tests. */
import { loadConfig } from '../../lib/config.js';
import { MemoryDocuments } from '../../lib/store/documents.js';
import { MemoryJobQueue, signStep, type StepMessage, type StepOf } from '../../lib/store/queue.js';
import { ImportService, type Logger, type MessageMeta } from '../../lib/service/service.js';
import { JobStore } from '../../lib/store/store.js';
import type { Timeouts } from '../../lib/oci/body.js';
import type { Lookup } from '../../lib/policy/sources.js';
import { Registries } from '../../lib/sides/registries.js';
import type { RetryPolicy } from '../../lib/retry.js';

export interface TestService {
  service: ImportService;
  docs: MemoryDocuments;
  queue: MemoryJobQueue;
  store: JobStore;
  env: Record<string, string>;
  logs: string[];
  meta(dequeueCount?: number): MessageMeta;
  /** A step message as the app writes it: signed with the service's MESSAGE_KEY. */
  sign(message: StepMessage): StepMessage;
}

/** `m` as a blob step message (a test that expects one fails here when it is not). */
export function blobStep(m: StepMessage | undefined): StepOf<'blob'> {
  if (m?.step !== 'blob') throw new Error(`expected a blob step message, got ${JSON.stringify(m)}`);
  return m;
}

/** The MESSAGE_KEY of test services whose env names none. */
export const TEST_MESSAGE_KEY = Buffer.alloc(32, 0x5a).toString('base64');

/** Fast retries for tests: three attempts, millisecond waits. */
export const TEST_RETRY: RetryPolicy = { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 };

export interface TestServiceOptions {
  leaseMarginMs?: number;
  stepMarginMs?: number;
  /** Least time between two checkpoints of a blob step: 0 (every chunk) unless a test asks for the service's default. */
  checkpointEveryMs?: number;
  docs?: MemoryDocuments;
  queue?: MemoryJobQueue;
  /** No DNS in tests: by default every name resolves to a public documentation address. */
  lookup?: Lookup;
  retry?: RetryPolicy;
  timeouts?: Timeouts;
  /** Small imports copied in their plan step: off unless asked for (or INLINE_IMPORT_BYTES is in env), so the tests see the blob steps. */
  inline?: { blobs: number; bytes: number };
}

export function testService(given: Record<string, string>, opts: TestServiceOptions = {}): TestService {
  const env = 'MESSAGE_KEY' in given ? given : { ...given, MESSAGE_KEY: TEST_MESSAGE_KEY };
  const docs = opts.docs ?? new MemoryDocuments();
  const queue = opts.queue ?? new MemoryJobQueue();
  const store = new JobStore(docs);
  const logs: string[] = [];
  const log: Logger = { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m) };
  const config = loadConfig(env);
  const lookup = opts.lookup ?? (async () => ['203.0.113.10']);
  const service = new ImportService({
    config,
    store,
    queue,
    leaseMarginMs: opts.leaseMarginMs,
    stepMarginMs: opts.stepMarginMs,
    checkpointEveryMs: opts.checkpointEveryMs ?? 0,
    lookup,
    inline: opts.inline ?? ('INLINE_IMPORT_BYTES' in env ? undefined : false),
    registries: new Registries({
      config,
      guardSources: true,
      lookup,
      retry: opts.retry ?? TEST_RETRY,
      timeouts: opts.timeouts,
    }),
  });
  return {
    service,
    docs,
    queue,
    store,
    env,
    logs,
    meta: (dequeueCount = 1) => ({ dequeueCount, maxDequeueCount: 3, log }),
    sign: (message) => signStep(config.messageKeys!, message),
  };
}
