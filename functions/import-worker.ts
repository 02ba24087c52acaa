/**
 * Queue trigger: runs ONE bounded step of an import (plan, a budgeted blob copy, or finalize) and
 * re-enqueues what remains. Also accepts import requests users drop on the queue (credentials by
 * name only). A temporary failure is thrown, so the host retries it and, after maxDequeueCount,
 * moves the message to `<queue>-poison`; the job is marked failed with the reason first.
 */
import { app, output, type InvocationContext } from '@azure/functions';
import { appFile, maxDequeueCount, readHostJson } from '../lib/service/host-settings.js';
import { importService } from '../lib/service/runtime.js';
import type { StepMessage } from '../lib/store/queue.js';

/**
 * maxDequeueCount as the host applies it (AzureFunctionsJobHost__extensions__queues__maxDequeueCount, then
 * host.json), read once: the step marks the job failed on its last attempt.
 */
const MAX_DEQUEUE = maxDequeueCount(process.env, readHostJson([appFile('host.json', import.meta.url)]));

/**
 * The step's continuation (this blob's next step, a finalize, the next fan-out) goes out through this output binding,
 * not the storage SDK: the host sends it once the step has succeeded and, as it was sent by a function of the same
 * host, its queue listener polls for it at once instead of at the end of its back-off (up to maxPollingInterval).
 */
const nextSteps = output.storageQueue({ queueName: '%IMPORT_QUEUE%', connection: 'AzureWebJobsStorage' });

export async function importWorker(message: unknown, context: InvocationContext): Promise<void> {
  const dequeueCount = Number(context.triggerMetadata?.dequeueCount ?? 1);
  const next: StepMessage[] = [];
  await importService().handleMessage(message, {
    dequeueCount,
    maxDequeueCount: MAX_DEQUEUE,
    log: { info: (m) => context.info(m), warn: (m) => context.warn(m), error: (m) => context.error(m) },
    handOff: (m) => next.push(m),
  });
  if (next.length > 0) context.extraOutputs.set(nextSteps, next);
}

app.storageQueue('importWorker', {
  queueName: '%IMPORT_QUEUE%',
  connection: 'AzureWebJobsStorage',
  extraOutputs: [nextSteps],
  handler: importWorker,
});
