/**
 * POST /api/imports — validate an import request, create the job, enqueue it: 202 + status URL.
 * GET  /api/imports/{id} — the job's status and progress. Neither ever returns a credential.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { KeyVaultReferenceError } from '../lib/config.js';
import { MAX_REQUEST_BYTES, parseRequestText, RequestError } from '../lib/jobs/request.js';
import { importService } from '../lib/jobs/runtime.js';

/** Clients should poll no faster than this. */
const RETRY_AFTER_SECONDS = 5;

function errorResponse(err: RequestError): HttpResponseInit {
  return { status: err.status, jsonBody: err.toJSON() };
}

/** `application/json`, with or without parameters (`; charset=utf-8`). */
function isJson(contentType: string | null): boolean {
  return /^application\/json\s*(;|$)/i.test(contentType?.trim() ?? '');
}

/**
 * A setting still holds its Key Vault reference (first start, role assignment not applied yet): 503 and
 * Retry-After, so the caller tries again; the log says what to check, the caller learns only which setting.
 */
function unavailable(err: unknown, context: InvocationContext): HttpResponseInit {
  if (!(err instanceof KeyVaultReferenceError)) throw err;
  context.error(err.message);
  return {
    status: 503,
    headers: { 'retry-after': '30' },
    jsonBody: { error: { code: err.code, message: `the app's setting ${err.setting} is not available yet (its Key Vault reference is not resolved); try again later`, target: err.setting } },
  };
}

export async function createImport(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    // A browser may send a cross-site text/plain or form POST without asking first; JSON it may not.
    if (!isJson(request.headers.get('content-type'))) {
      throw new RequestError(415, 'UNSUPPORTED_MEDIA_TYPE', 'the request body must be JSON: send Content-Type: application/json', 'Content-Type');
    }
    const declared = Number(request.headers.get('content-length') ?? '0');
    if (declared > MAX_REQUEST_BYTES) throw new RequestError(413, 'BODY_TOO_LARGE', `the request body is larger than ${MAX_REQUEST_BYTES} bytes`);
    const body = parseRequestText(await request.text());
    const job = await importService().submit(body, 'http');
    const statusUrl = new URL(`imports/${job.id}`, request.url.replace(/imports\/?(\?.*)?$/, '')).toString();
    context.info(`import ${job.id} queued: ${job.request.source} → ${job.targets.join(', ')}`);
    return {
      status: 202,
      headers: { location: statusUrl, 'retry-after': String(RETRY_AFTER_SECONDS) },
      jsonBody: { id: job.id, status: job.status, statusUrl },
    };
  } catch (err) {
    if (err instanceof RequestError) {
      context.warn(`import request refused: [${err.code}] ${err.target ?? ''}`);
      return errorResponse(err);
    }
    return unavailable(err, context);
  }
}

export async function getImport(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const id = request.params.id ?? '';
  if (!/^[0-9a-f-]{36}$/i.test(id)) {
    return errorResponse(new RequestError(404, 'NOT_FOUND', `no import with id "${id.slice(0, 64)}"`, 'id'));
  }
  let status;
  try {
    status = await importService().status(id.toLowerCase());
  } catch (err) {
    return unavailable(err, context);
  }
  if (!status) return errorResponse(new RequestError(404, 'NOT_FOUND', `no import with id "${id}"`, 'id'));
  context.trace(`status of ${id}: ${status.status}`);
  const done = status.status === 'succeeded' || status.status === 'failed';
  return { status: 200, jsonBody: status, headers: done ? {} : { 'retry-after': String(RETRY_AFTER_SECONDS) } };
}

app.http('createImport', { methods: ['POST'], route: 'imports', authLevel: 'function', handler: createImport });
app.http('getImport', { methods: ['GET'], route: 'imports/{id}', authLevel: 'function', handler: getImport });
