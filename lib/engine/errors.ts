/**
 * Refusals of the import itself (not of one request): a limit, a policy, a source that is not what it
 * claims. Each code names what to change; limits name their setting and number.
 */
import { OciImportError, type OciImportErrorOptions } from '../errors.js';

export type ImportErrorCode =
  | 'TOO_MANY_MANIFESTS'
  | 'TOO_MANY_BLOBS'
  | 'IMPORT_TOO_LARGE'
  | 'TAG_EXISTS'
  | 'UNSUPPORTED_MANIFEST'
  | 'DIGEST_MISMATCH'
  | 'NO_MATCHING_PLATFORM'
  | 'SOURCE_NOT_FOUND'
  | 'INVALID_REQUEST'
  | 'BLOB_SIZE_MISMATCH'
  | 'REPOSITORY_NOT_ALLOWED'
  | 'JOB_EXPIRED'
  | 'UPLOAD_FAILED'
  | 'STEP_POISONED'
  | 'REFERRERS_TAG_INVALID'
  | 'REFERRERS_TAG_CONFLICT';

export class ImportError extends OciImportError {
  override name = 'ImportError';
  constructor(code: ImportErrorCode, message: string, options: OciImportErrorOptions = {}) {
    super(code, message, options);
  }
}

/** How much one import may plan: refused at plan time, before any blob is copied or enqueued. */
export interface ImportLimits {
  /** Child manifests of an index (MAX_MANIFESTS, 50 as ACR). */
  readonly maxManifests: number;
  /** Unique blobs over all platforms (MAX_BLOBS). */
  readonly maxBlobs: number;
  /** Sum of the unique blobs' sizes (MAX_IMPORT_BYTES). */
  readonly maxImportBytes: number;
}
