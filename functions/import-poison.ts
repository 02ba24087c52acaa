/**
 * Queue trigger on `<IMPORT_QUEUE>-poison`, where the host moves a message after maxDequeueCount deliveries
 * without success (and where the app puts the queued requests it rejects). A poisoned step fails its job
 * (STEP_POISONED, or the error an earlier attempt recorded): a step that timed out or lost its worker on every
 * delivery never ran its own last-attempt handling, and its job would otherwise show `running` for ever.
 * Anything else is kept as a reason and a length under `poisoned/` in the jobs container and logged; the
 * message itself is deleted by the host once this succeeds — no message body (user input) is kept anywhere.
 * The idiomatic pattern: https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger#poison-messages
 */
import { app, type InvocationContext } from '@azure/functions';
import { appFile, maxDequeueCount, readHostJson } from '../lib/service/host-settings.js';
import { importService } from '../lib/service/runtime.js';

const MAX_DEQUEUE = maxDequeueCount(process.env, readHostJson([appFile('host.json', import.meta.url)]));

export async function importPoison(message: unknown, context: InvocationContext): Promise<void> {
  const id = context.triggerMetadata?.id;
  await importService().handlePoison(message, {
    ...(typeof id === 'string' ? { messageId: id } : {}),
    maxDequeueCount: MAX_DEQUEUE,
    log: { info: (m) => context.info(m), warn: (m) => context.warn(m), error: (m) => context.error(m) },
  });
}

app.storageQueue('importPoison', {
  queueName: '%IMPORT_QUEUE%-poison',
  connection: 'AzureWebJobsStorage',
  handler: importPoison,
});
