/**
 * Queue clients per storage connection, queue creation, and the host's message encoding
 * (host.json `extensions.queues.messageEncoding`: base64 by default, or none).
 */
import { QueueServiceClient, type QueueClient } from '@azure/storage-queue';
import type { MessageEncoding, StorageConnection } from './settings.js';

export class QueueClients {
  readonly #services = new Map<string, Promise<QueueServiceClient>>();
  readonly #created = new Map<string, Promise<void>>();

  service(conn: StorageConnection): Promise<QueueServiceClient> {
    const key = `${conn.kind}:${conn.setting}`;
    let service = this.#services.get(key);
    if (!service) {
      service = create(conn);
      this.#services.set(key, service);
    }
    return service;
  }

  /** A client for `name`, created (idempotently) on first use. */
  async queue(conn: StorageConnection, name: string): Promise<QueueClient> {
    const client = (await this.service(conn)).getQueueClient(name);
    const key = `${conn.setting}/${name}`;
    let created = this.#created.get(key);
    if (!created) {
      created = client.createIfNotExists().then(() => undefined);
      created.catch(() => this.#created.delete(key));
      this.#created.set(key, created);
    }
    await created;
    return client;
  }
}

/** Short retries: the listener polls again anyway, and shutdown must not wait minutes on a dead endpoint. */
const PIPELINE = {
  retryOptions: { maxTries: 3, retryDelayInMs: 500, maxRetryDelayInMs: 4000, tryTimeoutInMs: 30_000 },
};

async function create(conn: StorageConnection): Promise<QueueServiceClient> {
  if (conn.kind === 'connectionString') return QueueServiceClient.fromConnectionString(conn.connectionString, PIPELINE);
  // Identity-based connection (NAME__queueServiceUri / NAME__accountName): DefaultAzureCredential,
  // as Core Tools does locally (Azure CLI / VS Code sign-in, environment credentials).
  const { DefaultAzureCredential } = await import('@azure/identity');
  return new QueueServiceClient(conn.queueEndpoint, new DefaultAzureCredential(), PIPELINE);
}

/** Strict base64 (whitespace ignored, as .NET's Convert.FromBase64String does). */
export function isBase64(text: string): boolean {
  const compact = text.replace(/\s+/g, '');
  return compact.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(compact);
}

export type Decoded = { ok: true; text: string } | { ok: false };

export function decodeMessage(raw: string, encoding: MessageEncoding): Decoded {
  if (encoding === 'none') return { ok: true, text: raw };
  if (!isBase64(raw)) return { ok: false };
  return { ok: true, text: Buffer.from(raw.replace(/\s+/g, ''), 'base64').toString('utf8') };
}

export function encodeMessage(content: string | Uint8Array, encoding: MessageEncoding): string {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
  return encoding === 'base64' ? bytes.toString('base64') : bytes.toString('utf8');
}
