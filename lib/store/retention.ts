/**
 * Retention (JOB_RETENTION_DAYS): an ended import is deleted that many days after it ended — its folder
 * (`job.json`, `plan.json`, `blobs.json`, checkpoints, any sealed credentials left) and its index entry — and a
 * tombstone `expired/<id>.json` says it was there, so `GET /api/imports/{id}` answers 404 `IMPORT_EXPIRED` rather
 * than `NOT_FOUND`. A queued, running or waiting import is never deleted, whatever its age.
 *
 * Candidates come from the index (listing.ts), whose names carry the inverted creation time: an import that ended
 * before the cutoff was created before it, so only names at or above the cutoff's inverted time are looked at. Blob
 * storage lists by prefix, so that range is covered by at most 1 + 9 × 13 prefixes (most of them empty: one List
 * Blobs call each) — no scan of the recent index. A run deletes at most `maxJobs` imports (the timer runs hourly).
 *
 * In Azure a lifecycle-management rule on the container (infra/modules/storage.bicep) deletes what is older than the
 * retention plus a day: a backstop for what the app did not reach, and for tombstones; Azurite has no lifecycle engine.
 */
import { listNames, type Documents } from './documents.js';
import { INDEX_PREFIX } from './listing.js';
import { ENDED, type JobRecord, type JobStatus } from './types.js';

const DAY_MS = 86_400_000;
/** As in listing.ts: 13 digits of milliseconds. */
const MAX_MS = 9_999_999_999_999;
export const TOMBSTONE_PREFIX = 'expired/';
/** Imports deleted per run at most. */
export const PRUNE_PER_RUN = 200;

export interface Tombstone {
  readonly id: string;
  readonly status: JobStatus;
  readonly createdAt: string;
  /** When the import ended (its record's last update). */
  readonly endedAt: string;
  readonly expiredAt: string;
}

export interface PruneResult {
  /** Ids of the imports deleted, oldest prefix first. */
  readonly deleted: string[];
  /** Index entries of imports not ended (or ended after the cutoff) that were left alone. */
  readonly kept: number;
  /** Prefixes listed (List Blobs calls, but for pages beyond the first). */
  readonly prefixes: number;
}

/**
 * The prefixes (after `index/`) whose names hold exactly the 13-digit strings ≥ `threshold`: the threshold itself,
 * then for each position from the last, the threshold's head with a larger digit there.
 */
export function prefixesAtOrAbove(threshold: string): string[] {
  const out = [threshold];
  for (let i = threshold.length - 1; i >= 0; i--) {
    for (let d = Number(threshold[i]) + 1; d <= 9; d++) out.push(`${threshold.slice(0, i)}${d}`);
  }
  return out;
}

export function tombstonePath(id: string): string {
  return `${TOMBSTONE_PREFIX}${id}.json`;
}

/** Deletes one ended import: tombstone first, its folder (the record last), then its index entry. */
async function expire(
  docs: Documents,
  indexEntry: string,
  id: string,
  job: JobRecord | undefined,
  now: Date,
): Promise<void> {
  if (job) {
    const tombstone: Tombstone = {
      id,
      status: job.status,
      createdAt: job.createdAt,
      endedAt: job.updatedAt,
      expiredAt: now.toISOString(),
    };
    await docs.put(tombstonePath(id), tombstone);
  }
  const folder = (await listNames(docs, `${id}/`)).filter((n) => n !== `${id}/job.json`);
  await Promise.all(folder.map((n) => docs.delete(n)));
  await docs.delete(`${id}/job.json`);
  await docs.delete(indexEntry);
}

/** One retention run: deletes up to `maxJobs` imports that ended more than `retentionDays` before `now`. */
export async function pruneEnded(
  docs: Documents,
  o: { readonly retentionDays: number; readonly now?: Date; readonly maxJobs?: number },
): Promise<PruneResult> {
  const now = o.now ?? new Date();
  const cutoff = now.getTime() - o.retentionDays * DAY_MS;
  const threshold = String(MAX_MS - cutoff).padStart(13, '0');
  const max = o.maxJobs ?? PRUNE_PER_RUN;
  const deleted: string[] = [];
  let kept = 0;
  let prefixes = 0;
  for (const p of prefixesAtOrAbove(threshold)) {
    if (deleted.length >= max) break;
    prefixes++;
    let marker: string | undefined;
    do {
      const page = await docs.list(`${INDEX_PREFIX}${p}`, { marker, maxPageSize: 1000 });
      for (const e of page.entries) {
        if (deleted.length >= max) break;
        const id = e.name.slice(INDEX_PREFIX.length + 14);
        if (!ENDED.has(e.metadata.status as JobStatus)) {
          kept++;
          continue;
        }
        const job = (await docs.get<JobRecord>(`${id}/job.json`))?.value;
        // the record has the last word: an entry whose status is stale, or an import ended after the cutoff, stays
        if (job && (!ENDED.has(job.status) || Date.parse(job.updatedAt) > cutoff)) {
          kept++;
          continue;
        }
        await expire(docs, e.name, id, job, now);
        deleted.push(id);
      }
      marker = deleted.length >= max ? undefined : page.next;
    } while (marker);
  }
  return { deleted, kept, prefixes };
}

/** The tombstone of an import deleted by retention, if it is still kept. */
export async function tombstoneOf(docs: Documents, id: string): Promise<Tombstone | undefined> {
  return (await docs.get<Tombstone>(tombstonePath(id)))?.value;
}
