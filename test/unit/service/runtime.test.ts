/**
 * The app's own storage clients from the settings Azure gives it: identity-based `AzureWebJobsStorage__*ServiceUri`
 * (the account's primaryEndpoints, sovereign clouds and custom DNS included) with the user-assigned identity, or a
 * connection string locally.
 */
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { describe, expect, it } from 'vitest';
import { storageClients } from '../../../lib/service/runtime.js';

/** The credential a client signs in with (a protected member of the SDK's StorageClient). */
const credentialOf = (client: object): unknown => (client as { credential?: unknown }).credential;

const GOV = {
  AzureWebJobsStorage__blobServiceUri: 'https://stx.blob.core.usgovcloudapi.net/',
  AzureWebJobsStorage__queueServiceUri: 'https://stx.queue.core.usgovcloudapi.net/',
  AzureWebJobsStorage__tableServiceUri: 'https://stx.table.core.usgovcloudapi.net/',
  AzureWebJobsStorage__credential: 'managedidentity',
};

describe('storage clients from AzureWebJobsStorage settings', () => {
  it('service URIs as the template sets them: those endpoints, the user-assigned identity', () => {
    const c = storageClients({ ...GOV, AzureWebJobsStorage__clientId: '11111111-1111-4111-8111-111111111111' });
    expect(c.blobs.url).toBe(GOV.AzureWebJobsStorage__blobServiceUri);
    expect(c.queues.url).toBe(GOV.AzureWebJobsStorage__queueServiceUri);
    expect(c.blobs.getContainerClient('importjobs').url).toBe('https://stx.blob.core.usgovcloudapi.net/importjobs');
    expect(c.queues.getQueueClient('imports').url).toBe('https://stx.queue.core.usgovcloudapi.net/imports');
    expect(credentialOf(c.blobs)).toBeInstanceOf(ManagedIdentityCredential);
    expect(credentialOf(c.queues)).toBeInstanceOf(ManagedIdentityCredential);
  });

  it('without a client ID: the default credential chain (system-assigned identity in Azure)', () => {
    const c = storageClients(GOV);
    expect(credentialOf(c.blobs)).toBeInstanceOf(DefaultAzureCredential);
  });

  it('the account name alone still works in the public cloud', () => {
    const c = storageClients({ AzureWebJobsStorage__accountName: 'stx' });
    expect(c.blobs.url).toBe('https://stx.blob.core.windows.net/');
    expect(c.queues.url).toBe('https://stx.queue.core.windows.net');
  });

  it('a connection string wins; nothing at all is a setting error naming what to set', () => {
    const c = storageClients({ ...GOV, AzureWebJobsStorage: 'UseDevelopmentStorage=true' });
    expect(c.blobs.url).toBe('http://127.0.0.1:10000/devstoreaccount1');
    expect(() => storageClients({})).toThrow(/AzureWebJobsStorage__blobServiceUri and __queueServiceUri/);
  });

  it('a blob endpoint without a queue endpoint (or the reverse) is refused, not half a client', () => {
    const { AzureWebJobsStorage__blobServiceUri: blob, AzureWebJobsStorage__queueServiceUri: queue } = GOV;
    expect(() => storageClients({ AzureWebJobsStorage__blobServiceUri: blob })).toThrow(/__queueServiceUri/);
    expect(() => storageClients({ AzureWebJobsStorage__queueServiceUri: queue })).toThrow(/__queueServiceUri/);
  });

  it('settings with blanks around them, as a portal paste leaves them, still work; a blank connection string is none', () => {
    const c = storageClients({
      AzureWebJobsStorage: '  ',
      AzureWebJobsStorage__blobServiceUri: ` ${GOV.AzureWebJobsStorage__blobServiceUri} `,
      AzureWebJobsStorage__queueServiceUri: `${GOV.AzureWebJobsStorage__queueServiceUri}\n`,
      AzureWebJobsStorage__clientId: ' 11111111-1111-4111-8111-111111111111 ',
    });
    expect(c.blobs.url).toBe(GOV.AzureWebJobsStorage__blobServiceUri);
    expect(c.queues.url).toBe(GOV.AzureWebJobsStorage__queueServiceUri);
    expect(credentialOf(c.blobs)).toBeInstanceOf(ManagedIdentityCredential);
    expect(storageClients({ AzureWebJobsStorage__accountName: ' stx ' }).blobs.url).toBe(
      'https://stx.blob.core.windows.net/',
    );
  });
});
