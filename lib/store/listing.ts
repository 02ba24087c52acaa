/**
 * Listing imports newest first without reading every job: an index of one small document per job,
 * `index/<inverted creation time>-<id>`, whose names sort newest first (blob storage lists names in
 * lexicographic order) and whose metadata carries the job's status, so one List Blobs call (up to 1,000
 * names here) filters a page by status without opening a job record. Only the jobs a page returns are read.
 *
 * The index is written beside the job record (not in one transaction with it), so a reader trusts it only
 * as far as the record agrees: an entry whose job is missing or was created at another instant (a lost
 * race to create the same id) is skipped, and an entry whose status is stale is skipped from a filtered
 * page and repaired.
 *
 * Continuation: `{m, a}` — the storage marker of the listing page where the scan stopped, and the last
 * name consumed — so a page resumes exactly after the previous one even when newer jobs were added in
 * between (they sort before it). A page holds at most `limit` imports and scans at most MAX_SCAN entries:
 * a filter that matches rarely returns fewer (or none) with a `next` token, never an unbounded scan.
 *
 * A token is the app's own: its `{m, a}` carries an HMAC tag (MESSAGE_KEY, lib/store/mac.ts), so a caller cannot
 * pair a marker with a name far behind it and make one request skip through the whole index; and whatever a
 * token says, one page costs at most MAX_LIST_CALLS List Blobs calls.
 */
import { JOB_STATUSES } from '../api/status-view.js';
import type { MessageKeys } from '../config.js';
import { OciImportError } from '../errors.js';
import type { Documents } from './documents.js';
import { macOf, verifyMac } from './mac.js';
import type { JobRecord, JobStatus } from './types.js';

export const INDEX_PREFIX = 'index/';
/** Largest page a caller may ask for. */
export const MAX_PAGE = 100;
export const DEFAULT_PAGE = 20;
/** Index entries one page request reads at most (one List Blobs call). */
export const MAX_SCAN = 1000;
/** List Blobs calls one page request makes at most (a page resumes within the listing page its token names). */
export const MAX_LIST_CALLS = 3;
/** 13 digits of milliseconds: until the year 2286. */
const MAX_MS = 9_999_999_999_999;

/** The states a listing filters by (the status view's, lib/api/status-view.ts). */
export const STATUSES: readonly JobStatus[] = JOB_STATUSES;

/** The index entry of a job: names sort newest first; ties (same millisecond) by id. */
export function indexName(createdAt: string, id: string): string {
  return `${INDEX_PREFIX}${String(MAX_MS - Date.parse(createdAt)).padStart(13, '0')}-${id}`;
}

/** Writes (or rewrites) a job's index entry with its status. One write. */
export async function indexJob(docs: Documents, job: Pick<JobRecord, 'id' | 'createdAt' | 'status'>): Promise<void> {
  await docs.put(indexName(job.createdAt, job.id), { id: job.id }, undefined, { status: job.status });
}

export class InvalidTokenError extends OciImportError {
  constructor() {
    super('INVALID_QUERY', 'continuationToken is not a token this service returned; start again without it', {
      side: 'request',
    });
  }
}

interface Token {
  /** Storage marker of the listing page to resume in (absent: the first). */
  readonly m?: string;
  /** Last index name consumed. */
  readonly a: string;
}

function encodeToken(t: Token, keys: MessageKeys): string {
  const body = Buffer.from(JSON.stringify(t), 'utf8').toString('base64url');
  return `${body}.${macOf(keys, 'list-token', body)}`;
}

function decodeToken(raw: string, keys: MessageKeys): Token {
  const [body = '', tag, ...rest] = raw.split('.');
  if (rest.length === 0 && verifyMac(keys, 'list-token', body, tag)) {
    try {
      const t = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Partial<Token>;
      if (typeof t.a === 'string' && t.a.startsWith(INDEX_PREFIX) && (t.m === undefined || typeof t.m === 'string'))
        return { m: t.m, a: t.a };
    } catch {
      // fall through
    }
  }
  throw new InvalidTokenError();
}

export interface ListQuery {
  /** Only imports in one of these states (all when absent). */
  readonly statuses?: ReadonlySet<JobStatus>;
  /** 1..MAX_PAGE */
  readonly limit: number;
  readonly token?: string;
}

export interface ListPage {
  readonly jobs: readonly JobRecord[];
  /** Continuation token of the next page; absent on the last. */
  readonly next?: string;
}

/** Index entries of one page: up to `limit` matching names, and where the scan stopped. */
async function scan(docs: Documents, q: ListQuery, keys: MessageKeys): Promise<{ names: string[]; next?: Token }> {
  const start = q.token ? decodeToken(q.token, keys) : undefined;
  let marker = start?.m;
  let after = start?.a;
  const names: string[] = [];
  for (let scanned = 0, calls = 0; ;) {
    if (calls++ === MAX_LIST_CALLS) return { names, ...(after !== undefined ? { next: { m: marker, a: after } } : {}) };
    const page = await docs.list(INDEX_PREFIX, {
      marker,
      maxPageSize: q.statuses ? MAX_SCAN - scanned : q.limit - names.length + 1,
    });
    for (const e of page.entries) {
      if (after !== undefined && e.name <= after) continue;
      if (names.length === q.limit || scanned === MAX_SCAN) return { names, next: { m: marker, a: after! } };
      scanned++;
      after = e.name;
      if (!q.statuses || q.statuses.has(e.metadata.status as JobStatus)) names.push(e.name);
    }
    if (!page.next) return { names };
    if (scanned === MAX_SCAN || names.length === q.limit) return { names, next: { m: page.next, a: after! } };
    marker = page.next;
  }
}

/**
 * One page of imports, newest first. Cost: one List Blobs call (two when the first page of the listing
 * holds only entries consumed before), plus one read per import returned.
 */
export async function listJobs(
  docs: Documents,
  read: (id: string) => Promise<JobRecord | undefined>,
  q: ListQuery,
  keys: MessageKeys,
): Promise<ListPage> {
  const { names, next } = await scan(docs, q, keys);
  const jobs = await Promise.all(
    names.map(async (name) => {
      const id = name.slice(INDEX_PREFIX.length + 14);
      const job = await read(id);
      if (!job || indexName(job.createdAt, job.id) !== name) return undefined; // a record never created, or another's entry
      if (q.statuses && !q.statuses.has(job.status)) {
        await indexJob(docs, job).catch(() => undefined); // stale status: repaired for the next reader
        return undefined;
      }
      return job;
    }),
  );
  return {
    jobs: jobs.filter((j): j is JobRecord => j !== undefined),
    ...(next ? { next: encodeToken(next, keys) } : {}),
  };
}
