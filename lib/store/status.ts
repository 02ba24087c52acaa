/**
 * The states of an import job and which of them are final, for lib/jobs: defined with the status view
 * (lib/api/status-view.ts), which the CLI's client of a deployed service reads them from as well.
 */
export { ENDED, type JobStatus } from '../api/status-view.js';
