/**
 * Which states of an import job are final: shared by the job store, the service and the CLI's client of a
 * deployed service (which must not load the storage SDK for it). The states themselves are the status view's
 * (lib/api/status-view.ts). Depends on nothing at run time.
 */
import type { JobStatus } from '../api/status-view.js';

export type { JobStatus };

/** States an import never leaves. */
export const ENDED: ReadonlySet<string> = new Set<JobStatus>(['succeeded', 'failed', 'canceled']);
