/**
 * Builds the import service from the environment once per process: settings, the jobs container
 * and the queue from `AzureWebJobsStorage` — a connection string locally (Azurite), or the
 * identity-based form in Azure (`AzureWebJobsStorage__accountName` / `__blobServiceUri` /
 * `__queueServiceUri`, with `__clientId` for a user-assigned identity): no shared keys there.
 */
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { ConfigError, loadConfig, requireResolved } from '../config.js';
import { privateSourcesOf } from '../policy/private-sources.js';
import { BlobDocuments } from '../store/documents.js';
import { StorageJobQueue } from '../store/queue.js';
import { ImportService } from './service.js';
import { JobStore } from '../store/store.js';
import { SyncService } from './sync-service.js';
import { startTelemetry } from '../telemetry/index.js';
import { parseRules, RulesError, type SyncRule } from '../sync/rules.js';
import { readFileSync } from 'node:fs';

type Env = Record<string, string | undefined>;

export interface StorageClients {
  readonly blobs: BlobServiceClient;
  readonly queues: QueueServiceClient;
}

export function storageClients(env: Env): StorageClients {
  for (const name of [
    'AzureWebJobsStorage',
    'AzureWebJobsStorage__blobServiceUri',
    'AzureWebJobsStorage__queueServiceUri',
  ])
    requireResolved(name, env[name]);
  const conn = env.AzureWebJobsStorage?.trim();
  if (conn) {
    try {
      return {
        blobs: BlobServiceClient.fromConnectionString(conn),
        queues: QueueServiceClient.fromConnectionString(conn),
      };
    } catch (err) {
      throw new ConfigError(
        'AzureWebJobsStorage',
        `is not a usable storage connection string (${(err as Error).message.split('\n')[0]})`,
      );
    }
  }
  const account = env.AzureWebJobsStorage__accountName?.trim();
  const blobUri =
    env.AzureWebJobsStorage__blobServiceUri?.trim() || (account && `https://${account}.blob.core.windows.net`);
  const queueUri =
    env.AzureWebJobsStorage__queueServiceUri?.trim() || (account && `https://${account}.queue.core.windows.net`);
  if (!blobUri || !queueUri) {
    throw new ConfigError(
      'AzureWebJobsStorage',
      'is not set: give a connection string (UseDevelopmentStorage=true locally) or AzureWebJobsStorage__blobServiceUri and __queueServiceUri (or __accountName) for a managed identity',
    );
  }
  const clientId = env.AzureWebJobsStorage__clientId?.trim();
  const credential: TokenCredential = clientId
    ? new ManagedIdentityCredential({ clientId })
    : new DefaultAzureCredential();
  return { blobs: new BlobServiceClient(blobUri, credential), queues: new QueueServiceClient(queueUri, credential) };
}

// Traces and metrics when OTEL_EXPORTER_OTLP_ENDPOINT or APPLICATIONINSIGHTS_CONNECTION_STRING is set (nothing is loaded otherwise).
void startTelemetry();

let cached: ImportService | undefined;
let cachedSync: SyncService | undefined;

/** The process-wide service, built on first use from `process.env`. */
export function importService(env: Env = process.env): ImportService {
  if (cached) return cached;
  const config = loadConfig(env);
  privateSourcesOf(config); // a malformed PRIVATE_SOURCE_REGISTRIES stops the start, as any bad setting does
  // Locally the default is Azurite; an identity-based deployment has no AzureWebJobsStorage at all.
  const identityBased = Boolean(env.AzureWebJobsStorage__accountName || env.AzureWebJobsStorage__blobServiceUri);
  const storage = storageClients(
    env.AzureWebJobsStorage || identityBased ? env : { ...env, AzureWebJobsStorage: 'UseDevelopmentStorage=true' },
  );
  const docs = new BlobDocuments(storage.blobs.getContainerClient(config.jobsContainer));
  cached = new ImportService({
    config,
    // The local host's shortened queue lease (tests), else Azure's fixed 10 minutes: when a job counts as stalled.
    ...(Number(env.LOCAL_HOST_QUEUE_LEASE_SECONDS) > 0
      ? { queueLeaseMs: Number(env.LOCAL_HOST_QUEUE_LEASE_SECONDS) * 1000 }
      : {}),
    store: new JobStore(docs),
    queue: new StorageJobQueue(
      storage.queues.getQueueClient(config.importQueue),
      storage.queues.getQueueClient(`${config.importQueue}-poison`),
    ),
  });
  cachedSync = config.targetRegistry ? new SyncService(cached, docs, config, config.targetRegistry) : undefined;
  return cached;
}

/** The process-wide sync service (undefined without TARGET_REGISTRY). */
export function syncService(env: Env = process.env): SyncService | undefined {
  importService(env);
  return cachedSync;
}

/**
 * Sync rules from `SYNC_RULES` (inline JSON) or `SYNC_RULES_FILE`; undefined when neither is set.
 * A malformed file throws RulesError naming the line: the app refuses to start with it.
 */
export function syncRules(env: Env = process.env): SyncRule[] | undefined {
  // the rules are checked against what the deployment allows (credential bindings, TARGET_REPOSITORIES)
  const policy = env.SYNC_RULES?.trim() || env.SYNC_RULES_FILE?.trim() ? loadConfig(env) : undefined;
  if (env.SYNC_RULES?.trim()) return parseRules(env.SYNC_RULES, 'SYNC_RULES', policy);
  const file = env.SYNC_RULES_FILE?.trim();
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RulesError(file, undefined, '', `cannot read SYNC_RULES_FILE: ${(err as Error).message}`);
  }
  return parseRules(text, file, policy);
}

/** Tests replace the service (or reset it to be rebuilt from the environment). */
export function setImportService(service: ImportService | undefined, sync?: SyncService): void {
  cached = service;
  cachedSync = sync;
}
