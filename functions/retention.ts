/**
 * Timer trigger: retention (JOB_RETENTION_DAYS, lib/store/retention.ts). Every hour, at most 200 ended imports
 * older than the retention are deleted — records, sealed credentials, checkpoints and index entries — leaving a
 * tombstone so that their status URL answers 404 IMPORT_EXPIRED. An import that has not ended is never touched.
 */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { importService } from '../lib/service/runtime.js';

export async function retentionTimer(_timer: Timer, context: InvocationContext): Promise<void> {
  const r = await importService().prune();
  if (r.deleted.length)
    context.info(
      `retention: ${r.deleted.length} ended import(s) deleted, ${r.kept} not ended (or ended recently) kept, ${r.prefixes} index prefix(es) listed`,
    );
}

app.timer('retentionTimer', { schedule: '0 41 * * * *', handler: retentionTimer });
