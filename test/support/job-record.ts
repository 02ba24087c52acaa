/**
 * A stored job record for tests that exercise a rule reading a few of its fields: every field set to something
 * valid and empty (a queued import of nothing), `fields` on top.
 */
import type { JobRecord } from '../../lib/store/store.js';

export function jobRecord(fields: Partial<JobRecord> & Pick<JobRecord, 'id'>): JobRecord {
  return {
    status: 'queued',
    createdAt: '2026-12-05T00:00:00.000Z',
    updatedAt: '2026-12-05T00:00:00.000Z',
    expiresAt: '2026-12-06T00:00:00.000Z',
    request: { source: 'registry.example/app:1', target: 'target.example', force: false, inlineCredentials: false },
    targets: [],
    repositories: [],
    blobsTotal: 0,
    bytesTotal: 0,
    manifests: 0,
    blobBytes: {},
    doneBlobs: [],
    ...fields,
  };
}
