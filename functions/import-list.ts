/**
 * GET /api/imports?status=running&limit=20&continuationToken=… — imports newest first, one bounded page
 * (`{value, nextLink?}` as the Azure REST API guidelines' collections: nextLink only when there is more).
 * Pages come from an index in blob storage (lib/store/listing.ts): one list call and one read per import.
 */
import { guarded, httpAuthLevel } from '../lib/api/callers.js';
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { apiBase, errorResponse, unavailable } from '../lib/api/http.js';
import { DEFAULT_PAGE, InvalidTokenError, MAX_PAGE, STATUSES, type ListQuery } from '../lib/store/listing.js';
import { RequestError } from '../lib/request/request.js';
import { importService } from '../lib/service/runtime.js';
import type { JobStatus } from '../lib/store/store.js';

/** The query, checked: `status` a comma list of states, `limit` 1..100, `continuationToken` as returned. */
export function listQuery(params: URLSearchParams): ListQuery {
  const rawLimit = params.get('limit');
  if (rawLimit !== null && !/^\d{1,3}$/.test(rawLimit.trim()))
    throw new RequestError(400, 'INVALID_QUERY', `limit must be a whole number from 1 to ${MAX_PAGE}`, 'limit');
  const limit = rawLimit === null ? DEFAULT_PAGE : Number(rawLimit);
  if (limit < 1 || limit > MAX_PAGE)
    throw new RequestError(400, 'INVALID_QUERY', `limit must be a whole number from 1 to ${MAX_PAGE}`, 'limit');
  const rawStatus = params.get('status');
  let statuses: Set<JobStatus> | undefined;
  if (rawStatus !== null) {
    const wanted = rawStatus.split(',').map((s) => s.trim().toLowerCase());
    const unknown = wanted.find((s) => !STATUSES.includes(s as JobStatus));
    if (unknown !== undefined)
      throw new RequestError(
        400,
        'INVALID_QUERY',
        `status "${unknown.slice(0, 32)}" is not one of ${STATUSES.join(', ')}`,
        'status',
      );
    statuses = new Set(wanted as JobStatus[]);
  }
  const token = params.get('continuationToken') ?? undefined;
  return { limit, ...(statuses ? { statuses } : {}), ...(token ? { token } : {}) };
}

function nextLink(base: string, q: ListQuery, token: string): string {
  const params = new URLSearchParams();
  if (q.statuses) params.set('status', [...q.statuses].join(','));
  params.set('limit', String(q.limit));
  params.set('continuationToken', token);
  return `${base}imports?${params.toString()}`;
}

export async function listImports(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const query = listQuery(new URL(request.url).searchParams);
    const page = await importService().list(query);
    return {
      status: 200,
      jsonBody: {
        value: page.value,
        ...(page.next ? { nextLink: nextLink(apiBase(request.url, 'imports'), query, page.next) } : {}),
      },
    };
  } catch (err) {
    if (err instanceof InvalidTokenError)
      return errorResponse(new RequestError(400, err.code, err.message, 'continuationToken'));
    return unavailable(err, context);
  }
}

app.http('listImports', {
  methods: ['GET'],
  route: 'imports',
  authLevel: httpAuthLevel(),
  handler: guarded('read', listImports),
});
