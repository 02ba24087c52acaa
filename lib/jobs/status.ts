/**
 * The states of an import job, and which of them are final: shared by the job store, the service and the CLI's
 * client of a deployed service (which must not load the storage SDK for it). Depends on nothing.
 */
export type JobStatus = 'queued' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'canceled';

/** States an import never leaves. */
export const ENDED: ReadonlySet<string> = new Set<JobStatus>(['succeeded', 'failed', 'canceled']);
