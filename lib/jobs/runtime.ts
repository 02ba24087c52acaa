/**
 * Builds the import service from the environment once per process: settings, the jobs container
 * and the queue from `AzureWebJobsStorage` — a connection string locally (Azurite), or the
 * identity-based form in Azure (`AzureWebJobsStorage__accountName` / `__blobServiceUri` /
 * `__queueServiceUri`, with `__clientId` for a user-assigned identity): no shared keys there.
 */
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { ConfigError, loadConfig } from '../config.js';
import { BlobDocuments } from './documents.js';
import { StorageJobQueue } from './queue.js';
import { ImportService } from './service.js';
import { JobStore } from './store.js';

type Env = Record<string, string | undefined>;

export interface StorageClients {
  readonly blobs: BlobServiceClient;
  readonly queues: QueueServiceClient;
}

export function storageClients(env: Env): StorageClients {
  const conn = env.AzureWebJobsStorage?.trim();
  if (conn) {
    try {
      return { blobs: BlobServiceClient.fromConnectionString(conn), queues: QueueServiceClient.fromConnectionString(conn) };
    } catch (err) {
      throw new ConfigError('AzureWebJobsStorage', `is not a usable storage connection string (${(err as Error).message.split('\n')[0]})`);
    }
  }
  const account = env.AzureWebJobsStorage__accountName?.trim();
  const blobUri = env.AzureWebJobsStorage__blobServiceUri?.trim() || (account && `https://${account}.blob.core.windows.net`);
  const queueUri = env.AzureWebJobsStorage__queueServiceUri?.trim() || (account && `https://${account}.queue.core.windows.net`);
  if (!blobUri || !queueUri) {
    throw new ConfigError('AzureWebJobsStorage', 'is not set: give a connection string (UseDevelopmentStorage=true locally) or AzureWebJobsStorage__accountName for a managed identity');
  }
  const clientId = env.AzureWebJobsStorage__clientId?.trim();
  const credential: TokenCredential = clientId ? new ManagedIdentityCredential({ clientId }) : new DefaultAzureCredential();
  return { blobs: new BlobServiceClient(blobUri, credential), queues: new QueueServiceClient(queueUri, credential) };
}

let cached: ImportService | undefined;

/** The process-wide service, built on first use from `process.env`. */
export function importService(env: Env = process.env): ImportService {
  if (cached) return cached;
  const config = loadConfig(env);
  // Locally the default is Azurite; an identity-based deployment has no AzureWebJobsStorage at all.
  const identityBased = Boolean(env.AzureWebJobsStorage__accountName || env.AzureWebJobsStorage__blobServiceUri);
  const storage = storageClients(env.AzureWebJobsStorage || identityBased ? env : { ...env, AzureWebJobsStorage: 'UseDevelopmentStorage=true' });
  cached = new ImportService({
    config,
    env,
    store: new JobStore(new BlobDocuments(storage.blobs.getContainerClient(config.jobsContainer))),
    queue: new StorageJobQueue(storage.queues.getQueueClient(config.importQueue), storage.queues.getQueueClient(`${config.importQueue}-poison`)),
  });
  return cached;
}

/** Tests replace the service (or reset it to be rebuilt from the environment). */
export function setImportService(service: ImportService | undefined): void {
  cached = service;
}
