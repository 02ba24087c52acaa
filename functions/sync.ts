/**
 * Timer trigger: one sync pass over the rules (SYNC_RULES or SYNC_RULES_FILE) on SYNC_SCHEDULE,
 * enqueueing one import per changed tag. GET /api/syncs/latest reports the last pass.
 * Rules are read and validated when the app starts: a malformed file stops the start, naming the line.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext, type Timer } from '@azure/functions';
import { guarded, httpAuthLevel } from '../lib/api/callers.js';
import { errorResponse, unavailable } from '../lib/api/http.js';
import { RequestError } from '../lib/request/request.js';
import { syncRules, syncService } from '../lib/service/runtime.js';
import { telemetry, withSpan } from '../lib/telemetry/index.js';
import type { SyncRule } from '../lib/sync/rules.js';

const rules: SyncRule[] | undefined = syncRules();

export async function syncTimer(_timer: Timer, context: InvocationContext): Promise<void> {
  const service = syncService();
  if (!rules || !service) return;
  // one span per pass; the imports it enqueues carry its trace on (lib/telemetry)
  const r = await withSpan(
    'sync pass',
    { kind: 'internal', attributes: { 'oci_import.sync.rules': rules.length } },
    async () => {
      const pass = await service.runPass(rules);
      const t = telemetry();
      t.annotate({
        'oci_import.sync.tags_seen': pass.tagsSeen,
        'oci_import.sync.enqueued': pass.enqueued.length,
        'oci_import.sync.errors': pass.errors.length,
      });
      for (const [result, n] of [
        ['enqueued', pass.enqueued.length],
        ['unchanged', pass.skipped.length],
        ['in_progress', pass.inProgress.length],
        ['error', pass.errors.length],
      ] as const) {
        if (n) t.count('sync.items', n, { result });
      }
      t.count('sync.passes', 1, { outcome: pass.errors.length ? 'errors' : 'ok' });
      return pass;
    },
  );
  context.info(
    `sync pass: ${r.rules} rule(s), ${r.tagsSeen} tag(s) seen, ${r.enqueued.length} enqueued, ` +
      `${r.skipped.length} unchanged, ${r.inProgress.length} still importing, ${r.errors.length} error(s)`,
  );
  for (const e of r.errors)
    context.warn(`sync rule ${e.rule}${e.tag ? ` tag ${e.tag}` : ''}: [${e.code}] ${e.message}`);
}

export async function latestSync(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const report = await syncService()?.latest();
    if (!report)
      return errorResponse(
        new RequestError(
          404,
          'NO_SYNC_YET',
          rules ? 'no sync pass has run yet' : 'no sync rules are configured (SYNC_RULES or SYNC_RULES_FILE)',
        ),
      );
    return { status: 200, jsonBody: report };
  } catch (err) {
    return unavailable(err, context);
  }
}

if (rules) app.timer('syncTimer', { schedule: '%SYNC_SCHEDULE%', handler: syncTimer });
app.http('latestSync', {
  methods: ['GET'],
  route: 'syncs/latest',
  authLevel: httpAuthLevel(),
  handler: guarded('read', latestSync),
});
