/** GET /api/ui — the status page (lib/api/status-page.ts): recent imports and the last sync pass. */
import { guarded, httpAuthLevel } from '../lib/api/callers.js';
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { statusPage } from '../lib/api/status-page.js';

export async function statusPageHandler(_request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> {
  const page = statusPage();
  return { status: 200, body: page.html, headers: page.headers };
}

app.http('statusPage', {
  methods: ['GET'],
  route: 'ui',
  authLevel: httpAuthLevel(),
  handler: guarded('read', statusPageHandler),
});
