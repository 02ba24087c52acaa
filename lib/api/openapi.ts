/**
 * The OpenAPI 3.1 description of the HTTP API, served at GET /api/openapi.json. The request body's schema is
 * generated from the same zod schema the service validates with (lib/request/request.ts), and the status views'
 * (ImportStatus, ImportList, Accepted) from the zod schemas of lib/api/status-view.ts, so neither can drift; every response lists the error codes it can carry (`error.code` enums, as the Azure REST API
 * guidelines ask: "DO document the service's top-level error code strings"). test/unit/api/openapi.test.ts
 * validates the document with an OpenAPI validator, validates every handler answer against it, and fails
 * when a documented status or code is produced by no test; responses the Functions host gives before any
 * handler runs (`x-produced-by: host`) are produced by test/e2e/operate.test.ts against the local host.
 */
import * as z from 'zod';
import { codesAnswered, type Operation } from '../error-codes.js';
import { importRequestSchema } from '../request/request.js';
import { DEFAULT_PAGE, MAX_PAGE } from '../store/listing.js';
import { JOB_STATUSES, statusViewJsonSchemas } from './status-view.js';

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json): Json => ({ 'application/json': { schema } });
const header = (description: string, schema: Json = { type: 'string' }, required = true): Json => ({
  description,
  required,
  schema,
});

/** 400 codes of a request body (lib/request/request.ts, lib/policy/sources.ts, lib/azure for `registry` by resource ID). */
export const REQUEST_CODES = codesAnswered('createImport', 400);

/** An error answer: the guidelines' ErrorResponse with the codes `op` answers with `status` (lib/error-codes.ts). */
function errors(description: string, op: Operation, status: number, o: { headers?: Json; extra?: Json } = {}): Json {
  const codes = codesAnswered(op, status);
  return {
    description,
    headers: {
      'x-ms-error-code': header('The same code as `error.code`.', { type: 'string', enum: codes }),
      ...o.headers,
    },
    content: json({
      allOf: [
        ref('ErrorResponse'),
        {
          type: 'object',
          properties: { error: { type: 'object', properties: { code: { enum: codes } } }, ...o.extra },
        },
      ],
    }),
  };
}

const unauthorized = {
  description:
    'No valid function key (`x-functions-key` header or `code` query parameter); empty body. With AUTH_MODE=entra, answered by the app: no or a bad Bearer token (`UNAUTHORIZED`, `INVALID_TOKEN`), with `WWW-Authenticate: Bearer` (docs/security.md).',
  'x-produced-by': 'host',
};
const forbidden = {
  description:
    'Local host only: a `Host` or browser `Origin` that is not this host (DNS rebinding, cross-site pages); empty body. With AUTH_MODE=entra, answered by the app: a valid token without the app role (`FORBIDDEN`).',
  'x-produced-by': 'host',
};
const failure = { description: 'Anything else: an unexpected failure (the host answers an empty 500 and logs it).' };
const unavailable = (op: Operation): Json =>
  errors(
    "The service cannot answer now: a setting's Key Vault reference is not resolved yet (`Retry-After`), or what the codes say.",
    op,
    503,
    { headers: { 'retry-after': header('Seconds to wait (Key Vault references).', { type: 'integer' }, false) } },
  );
const retryAfter = header(
  'Seconds to wait before polling again; absent once the import has ended.',
  { type: 'integer' },
  false,
);
const statusHeaders = (required: boolean): Json => ({
  location: header('The status URL.', { type: 'string', format: 'uri' }, required),
  'operation-location': header(
    'The status URL (Azure long-running operations).',
    { type: 'string', format: 'uri' },
    required,
  ),
});
const idParam = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'The import id (a UUID).',
  schema: { type: 'string' },
};

function schemas(): Json {
  const { $schema: _drop, ...request } = z.toJSONSchema(importRequestSchema, { target: 'draft-2020-12' }) as Json;
  const named = {
    type: 'object',
    required: ['source', 'target', 'job'],
    properties: { source: { type: 'string' }, target: { type: 'string' }, job: { type: 'string' } },
  };
  return {
    ImportRequest: { ...request, description: 'An import, mirroring `az acr import`. Unknown fields are refused.' },
    ...statusViewJsonSchemas(),
    ErrorResponse: {
      type: 'object',
      required: ['error'],
      properties: {
        error: {
          type: 'object',
          required: ['code', 'message'],
          properties: {
            code: { type: 'string' },
            message: { type: 'string' },
            target: { type: 'string', description: 'The field, header or parameter at fault.' },
          },
        },
      },
    },
    SyncReport: {
      type: 'object',
      required: ['startedAt', 'finishedAt', 'rules', 'tagsSeen', 'enqueued', 'skipped', 'inProgress', 'errors'],
      properties: {
        startedAt: { type: 'string', format: 'date-time' },
        finishedAt: { type: 'string', format: 'date-time' },
        rules: { type: 'integer' },
        tagsSeen: { type: 'integer' },
        enqueued: { type: 'array', items: named },
        inProgress: { type: 'array', items: named },
        skipped: {
          type: 'array',
          items: {
            type: 'object',
            required: ['source', 'target', 'digest'],
            properties: { source: { type: 'string' }, target: { type: 'string' }, digest: { type: 'string' } },
          },
        },
        errors: {
          type: 'array',
          items: {
            type: 'object',
            required: ['rule', 'code', 'message'],
            properties: {
              rule: { type: 'integer' },
              tag: { type: 'string' },
              code: { type: 'string' },
              message: { type: 'string' },
            },
          },
        },
      },
    },
  };
}

function createImport(): Json {
  return {
    operationId: 'createImport',
    summary: 'Start an import (202 and a status URL to poll).',
    parameters: [
      {
        name: 'Repeatability-Request-ID',
        in: 'header',
        required: false,
        schema: { type: 'string', minLength: 1, maxLength: 256 },
        description:
          'Makes the POST idempotent for 24 hours: the same id with the same body returns the same import; with another body, 409.',
      },
      {
        name: 'Repeatability-First-Sent',
        in: 'header',
        required: false,
        schema: { type: 'string' },
        description: 'When the request was first sent (IMF-fixdate); more than 24 hours ago is refused with 412.',
      },
    ],
    requestBody: {
      required: true,
      content: json(ref('ImportRequest')),
      description: 'At most 64 KiB, `Content-Type: application/json`.',
    },
    responses: {
      202: {
        description: 'Accepted: the import is queued (or, for a repeated request, its current status).',
        content: json(ref('Accepted')),
        headers: {
          ...statusHeaders(true),
          'retry-after': retryAfter,
          'repeatability-result': header(
            '`accepted` when the request carried Repeatability-Request-ID.',
            { enum: ['accepted'] },
            false,
          ),
        },
      },
      400: errors('The request names what to change (`error.target`); nothing was created.', 'createImport', 400, {
        headers: {
          'repeatability-result': header(
            '`rejected` when the request carried Repeatability-Request-ID.',
            { enum: ['rejected'] },
            false,
          ),
        },
      }),
      401: unauthorized,
      403: forbidden,
      409: errors('The Repeatability-Request-ID was used with another body.', 'createImport', 409),
      412: errors('Repeatability-First-Sent is older than 24 hours.', 'createImport', 412),
      413: {
        ...errors(
          'The body is over 64 KiB (the host answers an empty 413 above FUNCTIONS_REQUEST_BODY_SIZE_LIMIT).',
          'createImport',
          413,
        ),
      },
      415: errors('The body is not `application/json`.', 'createImport', 415),
      503: unavailable('createImport'),
      default: failure,
    },
  };
}

function listImports(): Json {
  return {
    operationId: 'listImports',
    summary: 'Imports, newest first, one page at a time.',
    description:
      'A page may hold fewer imports than `limit` (even none) and still have a `nextLink`: one page reads at most 1,000 index entries. ' +
      'Imports that start while you page are not in later pages; an import whose status changes may appear in two pages of a filtered listing, or none.',
    parameters: [
      {
        name: 'status',
        in: 'query',
        required: false,
        schema: { type: 'string' },
        description: `Comma list of states: ${JOB_STATUSES.join(', ')}.`,
      },
      {
        name: 'limit',
        in: 'query',
        required: false,
        schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE },
        description: 'Largest page size; the service may return fewer.',
      },
      {
        name: 'continuationToken',
        in: 'query',
        required: false,
        schema: { type: 'string' },
        description: 'From a `nextLink`.',
      },
    ],
    responses: {
      200: { description: 'A page of imports.', content: json(ref('ImportList')) },
      400: errors('A query parameter is wrong (`error.target` names it).', 'listImports', 400),
      401: unauthorized,
      403: forbidden,
      503: unavailable('listImports'),
      default: failure,
    },
  };
}

function getImport(): Json {
  return {
    operationId: 'getImport',
    summary: 'The status and progress of an import.',
    parameters: [idParam],
    responses: {
      200: { description: 'The import.', content: json(ref('ImportStatus')), headers: { 'retry-after': retryAfter } },
      401: unauthorized,
      403: forbidden,
      404: errors(
        'No such import (`NOT_FOUND`), or one that ended more than JOB_RETENTION_DAYS ago and was deleted (`IMPORT_EXPIRED`, while its tombstone is kept).',
        'getImport',
        404,
      ),
      503: unavailable('getImport'),
      default: failure,
    },
  };
}

function cancelImport(): Json {
  return {
    operationId: 'cancelImport',
    summary:
      'Cancel an import: it ends `canceled`, tags nothing, and its running steps stop at their next checkpoint (within about a second and a chunk).',
    parameters: [idParam],
    responses: {
      202: {
        description: 'Canceled; its steps wind down (upload sessions canceled on the target).',
        content: json(ref('ImportStatus')),
        headers: statusHeaders(true),
      },
      401: unauthorized,
      403: forbidden,
      404: errors('No such import.', 'cancelImport', 404),
      409: errors(
        'The import has ended already, or is writing its tags; `import` is its status.',
        'cancelImport',
        409,
        { extra: { import: ref('ImportStatus') } },
      ),
      501: errors('Cancel takes no Repeatability-Request-ID (it is idempotent by itself).', 'cancelImport', 501),
      503: unavailable('cancelImport'),
      default: failure,
    },
  };
}

function latestSync(): Json {
  return {
    operationId: 'latestSync',
    summary: 'The last pass of the sync timer.',
    responses: {
      200: { description: 'The report.', content: json(ref('SyncReport')) },
      401: unauthorized,
      403: forbidden,
      404: errors('No pass has run yet, or no rules are configured.', 'latestSync', 404),
      503: unavailable('latestSync'),
      default: failure,
    },
  };
}

function statusPage(): Json {
  return {
    operationId: 'statusPage',
    summary: 'The status page: recent imports and the last sync pass. Open it with `?code=<key>` in Azure.',
    responses: {
      200: {
        description: 'One HTML document (inline style and script under a nonce Content-Security-Policy).',
        content: { 'text/html': { schema: { type: 'string' } } },
        headers: {
          'content-security-policy': header(
            "The page's policy: nothing but its own nonce-bound style and script, and requests to this API.",
          ),
        },
      },
      401: unauthorized,
      403: forbidden,
      default: failure,
    },
  };
}

function paths(): Json {
  return {
    '/imports': { post: createImport(), get: listImports() },
    '/imports/{id}': { get: getImport() },
    '/imports/{id}/cancel': { post: cancelImport() },
    '/syncs/latest': { get: latestSync() },
    '/openapi.json': {
      get: {
        operationId: 'openApi',
        summary: 'This document.',
        responses: {
          200: { description: 'OpenAPI 3.1.', content: json({ type: 'object' }) },
          401: unauthorized,
          403: forbidden,
          default: failure,
        },
      },
    },
    '/ui': { get: statusPage() },
  };
}

/** The document, its server the API's base URL as the caller reached it (`https://<app>.azurewebsites.net/api`). */
export function openApiDocument(serverUrl: string): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'oci-import',
      version: '1.0',
      description:
        "Import container images and OCI artifacts into this deployment's registry (a self-hosted `az acr import`). " +
        'Every route needs a function key; imports are long-running operations polled at their status URL.',
    },
    servers: [{ url: serverUrl.replace(/\/+$/, '') }],
    security: [{ functionKey: [] }, { functionKeyQuery: [] }],
    paths: paths(),
    components: {
      schemas: schemas(),
      securitySchemes: {
        functionKey: {
          type: 'apiKey',
          in: 'header',
          name: 'x-functions-key',
          description: 'A function or host key of the app.',
        },
        functionKeyQuery: {
          type: 'apiKey',
          in: 'query',
          name: 'code',
          description: 'The same key as a query parameter (what a browser can send).',
        },
      },
    },
  };
}
