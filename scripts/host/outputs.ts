/**
 * Output bindings after a successful invocation. Storage-queue outputs (`output.storageQueue`, as
 * return value or extra output) are sent with the host's message encoding; a JSON array becomes one
 * message per element, as the host does. Other output types are dropped (warned at start-up).
 *
 * After sending to a queue, the host tells its own listener of that queue (`enqueued`), which polls at once
 * instead of waiting out its back-off, as the queues extension does: its output collector calls
 * `IMessageEnqueuedWatcher.Notify(queueName)` after each message ("Optimization where a queue output can
 * directly trigger a queue input. This is per-host": QueuesExtensionConfigProvider.QueueAsyncCollector,
 * azure-sdk-for-net sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues), and the QueueListener
 * registered with that SharedQueueWatcher ends its wait for the next poll. Messages sent by the function's
 * own code (a storage SDK) wake nothing: they are found by the next poll.
 */
import type { RpcBindingInfo, RpcInvocationResponse, RpcTypedData } from './core-api.js';
import type { HostedFunction } from './catalog.js';
import { resolveStorageConnection, validateQueueName, type Env, type MessageEncoding } from './settings.js';
import { encodeMessage, type QueueClients } from './storage.js';

/** Messages a queue output value stands for. */
export function queueMessagesOf(data: RpcTypedData | null | undefined): (string | Uint8Array)[] {
  if (!data) return [];
  if (typeof data.string === 'string') return [data.string];
  if (data.bytes) return [data.bytes];
  if (typeof data.int === 'number') return [String(data.int)];
  if (typeof data.double === 'number') return [String(data.double)];
  if (data.collectionString?.string) return [...data.collectionString.string];
  if (data.collectionBytes?.bytes) return [...data.collectionBytes.bytes];
  if (typeof data.json === 'string') {
    const parsed: unknown = JSON.parse(data.json);
    if (parsed === null || parsed === undefined) return [];
    if (Array.isArray(parsed)) return parsed.map((item) => (typeof item === 'string' ? item : JSON.stringify(item)));
    return [data.json];
  }
  return [];
}

export interface OutputDeps {
  readonly clients: QueueClients;
  readonly env: Env;
  readonly encoding: MessageEncoding;
  /** The shared queue watcher: called with a queue's name after messages were sent to it. */
  readonly enqueued?: (queueName: string) => void;
}

/** Sends every queue output of `response`. Returns the number of messages sent. Throws on failure. */
export async function deliverOutputs(
  hosted: HostedFunction,
  response: RpcInvocationResponse,
  deps: OutputDeps,
): Promise<number> {
  let sent = 0;
  for (const [name, binding] of hosted.outputs) {
    if (String(binding.type ?? '').toLowerCase() !== 'queue') continue;
    const data =
      name === '$return' ? response.returnValue : (response.outputData ?? []).find((o) => o.name === name)?.data;
    const messages = queueMessagesOf(data);
    if (messages.length === 0) continue;
    const client = await queueFor(binding, hosted, deps);
    for (const m of messages) {
      await client.sendMessage(encodeMessage(m, deps.encoding));
      sent++;
      deps.enqueued?.(client.name);
    }
  }
  return sent;
}

async function queueFor(binding: RpcBindingInfo, hosted: HostedFunction, deps: OutputDeps) {
  const queueName = String(binding.queueName ?? '');
  validateQueueName(queueName, `function '${hosted.fn.name}' queue output`);
  const conn = resolveStorageConnection(
    typeof binding.connection === 'string' ? binding.connection : undefined,
    deps.env,
  );
  return deps.clients.queue(conn, queueName);
}
