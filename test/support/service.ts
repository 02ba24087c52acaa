/** An ImportService on memory storage, for handler and step tests. */
import { loadConfig } from '../../lib/config.js';
import { MemoryDocuments } from '../../lib/jobs/documents.js';
import { MemoryJobQueue } from '../../lib/jobs/queue.js';
import { ImportService, type Logger, type MessageMeta } from '../../lib/jobs/service.js';
import { JobStore } from '../../lib/jobs/store.js';
import { RegistryClient } from '../../lib/oci/registry.js';

export interface TestService {
  service: ImportService;
  docs: MemoryDocuments;
  queue: MemoryJobQueue;
  store: JobStore;
  env: Record<string, string>;
  logs: string[];
  meta(dequeueCount?: number): MessageMeta;
}

export function testService(env: Record<string, string>, opts: { leaseMarginMs?: number; docs?: MemoryDocuments; queue?: MemoryJobQueue } = {}): TestService {
  const docs = opts.docs ?? new MemoryDocuments();
  const queue = opts.queue ?? new MemoryJobQueue();
  const store = new JobStore(docs);
  const logs: string[] = [];
  const log: Logger = { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m) };
  const service = new ImportService({
    config: loadConfig(env), env, store, queue, leaseMarginMs: opts.leaseMarginMs,
    // no DNS in tests: names resolve to a public documentation address
    lookup: async () => ['203.0.113.10'],
    client: (registry, insecure, credentials, authenticator, checkUrl) => new RegistryClient({
      registry, insecure, credentials, authenticator, checkUrl, retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 },
    }),
  });
  return { service, docs, queue, store, env, logs, meta: (dequeueCount = 1) => ({ dequeueCount, maxDequeueCount: 3, log }) };
}
