/** GET /api/openapi.json — the OpenAPI 3.1 description of this API (lib/api/openapi.ts). */
import { guarded, httpAuthLevel } from '../lib/api/callers.js';
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { apiBase } from '../lib/api/http.js';
import { openApiDocument } from '../lib/api/openapi.js';

export async function openApi(request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> {
  return {
    status: 200,
    jsonBody: openApiDocument(apiBase(request.url, 'openapi.json')),
    headers: { 'cache-control': 'no-cache' },
  };
}

app.http('openApi', {
  methods: ['GET'],
  route: 'openapi.json',
  authLevel: httpAuthLevel(),
  handler: guarded('read', openApi),
});
