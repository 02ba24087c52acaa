/**
 * POST /api/imports — validate an import request, create the job, enqueue it: 202 + status URL
 *   (`Location`, `Operation-Location`, `Retry-After`); `Repeatability-Request-ID` makes it idempotent.
 * GET  /api/imports/{id} — the job's status and progress. Neither ever returns a credential.
 */
import { app, output, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { describeCaller, guarded, httpAuthLevel } from '../lib/api/callers.js';
import type { Caller } from '../lib/api/entra-auth.js';
import {
  apiBase,
  errorResponse,
  importId,
  isJson,
  RETRY_AFTER_SECONDS,
  statusUrl,
  unavailable,
} from '../lib/api/http.js';
import { parseRepeatability, type RepeatabilityHeaders } from '../lib/service/repeatability.js';
import { MAX_REQUEST_BYTES, parseRequestText, RequestError, TARGET_REGISTRY_NOT_SET } from '../lib/request/request.js';
import { importService } from '../lib/service/runtime.js';
import type { StepMessage } from '../lib/store/queue.js';
import { ENDED, type JobRecord } from '../lib/store/store.js';
import { telemetry, withSpan, withTraceId } from '../lib/telemetry/index.js';

// Say it where the operator looks first (the start-up log), not only to the first caller.
if (!process.env.TARGET_REGISTRY?.trim())
  console.warn(
    `oci-import: ${TARGET_REGISTRY_NOT_SET}; until then every POST /api/imports is refused with 503 TARGET_REGISTRY_NOT_SET`,
  );

/**
 * The plan step of an accepted import goes out through this output binding, not the storage SDK: the host sends it
 * as the invocation ends, before the 202 leaves (a send that fails turns the answer into a 500: nothing was accepted;
 * so long as the app does not turn on HTTP streams, with which the answer could leave first), and, sent by a function
 * of the same host, it wakes that host's queue listener at once. A message sent with the SDK waits for the listener's
 * next poll: up to maxPollingInterval on an idle app.
 */
export const planStep = output.storageQueue({ queueName: '%IMPORT_QUEUE%', connection: 'AzureWebJobsStorage' });

/**
 * 202 with the status monitor (the Azure guidelines' long-running operation pattern: also for a repeated
 * request, whatever its state — "return 202-Accepted and a status monitor even if processing was completed").
 */
function accepted(
  request: HttpRequest,
  job: JobRecord,
  repeated: boolean,
  repeat: RepeatabilityHeaders | undefined,
): HttpResponseInit {
  const url = statusUrl(apiBase(request.url, 'imports'), job.id);
  const view = importService().view(job);
  return {
    status: 202,
    headers: {
      location: url,
      'operation-location': url,
      ...(ENDED.has(job.status) ? {} : { 'retry-after': String(RETRY_AFTER_SECONDS) }),
      ...(repeat ? { 'repeatability-result': 'accepted' } : {}),
    },
    jsonBody: repeated ? { ...view, statusUrl: url } : { id: job.id, status: job.status, statusUrl: url },
  };
}

/**
 * The POST starts the import's trace (lib/telemetry; a no-op without it): a new trace per request, whatever
 * traceparent the caller sends, so that one trace is one import; its queue messages carry it on.
 */
export function createImport(
  request: HttpRequest,
  context: InvocationContext,
  caller?: Caller,
): Promise<HttpResponseInit> {
  return withSpan(
    'POST /api/imports',
    { kind: 'server', attributes: { 'http.request.method': 'POST', 'http.route': '/api/imports' } },
    async () => {
      const response = await create(request, context, caller);
      telemetry().annotate({ 'http.response.status_code': response.status });
      return response;
    },
  );
}

async function create(request: HttpRequest, context: InvocationContext, caller?: Caller): Promise<HttpResponseInit> {
  let repeat: RepeatabilityHeaders | undefined;
  try {
    // A browser may send a cross-site text/plain or form POST without asking first; JSON it may not.
    if (!isJson(request.headers.get('content-type'))) {
      throw new RequestError(
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        'the request body must be JSON: send Content-Type: application/json',
        'Content-Type',
      );
    }
    const declared = Number(request.headers.get('content-length') ?? '0');
    if (declared > MAX_REQUEST_BYTES)
      throw new RequestError(413, 'BODY_TOO_LARGE', `the request body is larger than ${MAX_REQUEST_BYTES} bytes`);
    repeat = parseRepeatability((name) => request.headers.get(name));
    const body = parseRequestText(await request.text());
    const service = importService();
    const queued: StepMessage[] = [];
    const handOff = (m: StepMessage) => queued.push(m);
    const { job, repeated } = repeat
      ? await service.submitRepeatable(body, repeat, caller, handOff)
      : { job: await service.submit(body, 'http', { caller, handOff }), repeated: false };
    telemetry().annotate({
      'oci_import.id': job.id,
      'oci_import.source': job.request.source,
      'oci_import.target': job.targets.join(', '),
    });
    context.info(
      withTraceId(
        repeated
          ? `import ${job.id} requested again (Repeatability-Request-ID): ${job.status}`
          : `import ${job.id} queued by ${describeCaller(caller)}: ${job.request.source} → ${job.targets.join(', ')}`,
      ),
    );
    const response = accepted(request, job, repeated, repeat);
    if (queued.length) context.extraOutputs.set(planStep, queued);
    return response;
  } catch (err) {
    if (err instanceof RequestError) {
      context.warn(`import request refused: [${err.code}] ${err.target ?? ''}`);
      return errorResponse(
        err,
        {},
        request.headers.has('repeatability-request-id') ? { 'repeatability-result': 'rejected' } : {},
      );
    }
    return unavailable(err, context);
  }
}

export async function getImport(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const id = importId(request.params.id);
    const status = await importService().status(id);
    if (!status) {
      const expired = await importService().expired(id);
      if (expired)
        return errorResponse(
          new RequestError(
            404,
            'IMPORT_EXPIRED',
            `import "${id}" ended (${expired.status}) at ${expired.endedAt} and was deleted after JOB_RETENTION_DAYS`,
            'id',
          ),
        );
      return errorResponse(new RequestError(404, 'NOT_FOUND', `no import with id "${id}"`, 'id'));
    }
    context.trace(`status of ${id}: ${status.status}`);
    return {
      status: 200,
      jsonBody: status,
      headers: ENDED.has(status.status) ? {} : { 'retry-after': String(RETRY_AFTER_SECONDS) },
    };
  } catch (err) {
    return unavailable(err, context);
  }
}

app.http('createImport', {
  methods: ['POST'],
  route: 'imports',
  authLevel: httpAuthLevel(),
  extraOutputs: [planStep],
  handler: guarded('write', createImport),
});
app.http('getImport', {
  methods: ['GET'],
  route: 'imports/{id}',
  authLevel: httpAuthLevel(),
  handler: guarded('read', getImport),
});
