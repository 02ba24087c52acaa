/**
 * Queue trigger: runs ONE bounded step of an import (plan, a budgeted blob copy, or finalize) and
 * re-enqueues what remains. Also accepts import requests users drop on the queue (credentials by
 * name only). A temporary failure is thrown, so the host retries it and, after maxDequeueCount,
 * moves the message to `<queue>-poison`; the job is marked failed with the reason first.
 */
import { app, type InvocationContext } from '@azure/functions';
import { importService } from '../lib/jobs/runtime.js';
import { readFileSync } from 'node:fs';

/** host.json's maxDequeueCount, read once: the step marks the job failed on its last attempt. */
function maxDequeueCount(): number {
  // dist/functions/ when compiled, functions/ when run from source
  for (const path of ['../../host.json', '../host.json']) {
    try {
      const host = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { extensions?: { queues?: { maxDequeueCount?: number } } };
      return host.extensions?.queues?.maxDequeueCount ?? 5;
    } catch {
      // try the next place
    }
  }
  return 5;
}
const MAX_DEQUEUE = maxDequeueCount();

export async function importWorker(message: unknown, context: InvocationContext): Promise<void> {
  const dequeueCount = Number(context.triggerMetadata?.dequeueCount ?? 1);
  await importService().handleMessage(message, {
    dequeueCount,
    maxDequeueCount: MAX_DEQUEUE,
    log: { info: (m) => context.info(m), warn: (m) => context.warn(m), error: (m) => context.error(m) },
  });
}

app.storageQueue('importWorker', { queueName: '%IMPORT_QUEUE%', connection: 'AzureWebJobsStorage', handler: importWorker });
