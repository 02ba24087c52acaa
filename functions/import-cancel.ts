/**
 * POST /api/imports/{id}/cancel — ends an import as `canceled`: 202 with its status (the running steps
 * stop within a chunk and cancel their upload sessions; nothing is tagged: lib/service/cancel.ts). An import
 * that ended already, or is writing its tags, is 409 with its status.
 */
import { describeCaller, guarded, httpAuthLevel } from '../lib/api/callers.js';
import type { Caller } from '../lib/api/entra-auth.js';
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { apiBase, errorResponse, importId, statusUrl, unavailable } from '../lib/api/http.js';
import { RequestError } from '../lib/request/request.js';
import { importService } from '../lib/service/runtime.js';

export async function cancelImport(
  request: HttpRequest,
  context: InvocationContext,
  caller?: Caller,
): Promise<HttpResponseInit> {
  try {
    // The guidelines: an operation without repeatability support answers 501 to a request that asks for it.
    if (request.headers.has('repeatability-request-id')) {
      throw new RequestError(
        501,
        'NOT_IMPLEMENTED',
        'cancel does not take Repeatability-Request-ID: it is idempotent by itself (a second cancel answers 409 with the status canceled)',
        'Repeatability-Request-ID',
      );
    }
    const id = importId(request.params.id);
    const service = importService();
    const outcome = await service.cancel(id);
    if (outcome.kind === 'missing') throw new RequestError(404, 'NOT_FOUND', `no import with id "${id}"`, 'id');
    const view = service.view(outcome.job);
    if (outcome.kind === 'ended') {
      return errorResponse(
        new RequestError(
          409,
          'IMPORT_ENDED',
          `import ${id} has ended already (${view.status}); there is nothing to cancel`,
          'id',
        ),
        { import: view },
      );
    }
    if (outcome.kind === 'finalizing') {
      return errorResponse(
        new RequestError(
          409,
          'IMPORT_FINALIZING',
          `import ${id} has copied every blob and is writing its manifests and tags; it can no longer be canceled`,
          'id',
        ),
        { import: view },
      );
    }
    context.info(`import ${id} canceled by ${describeCaller(caller)}`);
    const url = statusUrl(apiBase(request.url, 'imports'), id);
    return { status: 202, headers: { location: url, 'operation-location': url }, jsonBody: view };
  } catch (err) {
    return unavailable(err, context);
  }
}

app.http('cancelImport', {
  methods: ['POST'],
  route: 'imports/{id}/cancel',
  authLevel: httpAuthLevel(),
  handler: guarded('write', cancelImport),
});
