/**
 * The status view is defined once (lib/api/status-view.ts); these check that what is derived from it agrees:
 * - the OpenAPI document carries exactly the JSON Schemas generated from it;
 * - the handlers' real answers (an import run to the end through its queue steps against fake registries, then
 *   read, listed and canceled through the HTTP functions) parse with the strict schemas;
 * - the schemas refuse what is not a status, and the CLI's client refuses such an answer with INVALID_ANSWER
 *   while keeping fields it does not know.
 */
import type { HttpResponseInit } from '@azure/functions';
import { afterEach, describe, expect, it } from 'vitest';
import { cancelImport } from '../../../functions/import-cancel.js';
import { listImports } from '../../../functions/import-list.js';
import { getImport } from '../../../functions/imports.js';
import { createImportVia } from '../../support/create-import.js';
import { openApiDocument } from '../../../lib/api/openapi.js';
import {
  acceptedSchema,
  importListSchema,
  importStatusSchema,
  statusViewJsonSchemas,
} from '../../../lib/api/status-view.js';
import { ApiError, ImportsClient } from '../../../lib/cli/client.js';
import { setImportService } from '../../../lib/service/runtime.js';
import { seedOneLayerImage as seedImage, startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';
import { testService, type TestService } from '../../support/service.js';
import { ctx, request } from '../../support/functions-http.js';

const ID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const VIEW = {
  id: ID,
  status: 'running',
  source: 'docker.io/library/nginx:1.27',
  targets: ['r.example/nginx:1.27'],
  createdAt: '2025-06-01T00:00:00Z',
  updatedAt: '2025-06-01T00:00:01Z',
  progress: { manifests: 1, blobsTotal: 2, blobsDone: 1, bytesTotal: 100, bytesCopied: 50 },
};

async function drain(t: TestService): Promise<void> {
  for (let rounds = 0; rounds < 100; rounds++) {
    const batch = t.queue.drain();
    if (batch.length === 0) return;
    for (const m of batch) await t.service.handleMessage(m, t.meta());
  }
  throw new Error('queue did not drain');
}

const bodyOf = (answer: HttpResponseInit): unknown => answer.jsonBody;

/** A client whose every request is answered with `body` (status 200). */
const answering = (body: unknown): ImportsClient =>
  new ImportsClient(
    'http://127.0.0.1:1/api',
    'k',
    (async () =>
      new Response(JSON.stringify(body), {
        status: 200,
        headers: { 'content-type': 'application/json' },
      })) as typeof fetch,
  );

describe('the status view, defined once', () => {
  let regs: FakeRegistry[] = [];
  afterEach(async () => {
    setImportService(undefined);
    await Promise.all(regs.map((r) => r.close()));
    regs = [];
  });

  it('the OpenAPI document carries the schemas generated from it', () => {
    const schemas = (openApiDocument('http://127.0.0.1/api').components as { schemas: Record<string, unknown> })
      .schemas;
    const derived = statusViewJsonSchemas();
    for (const name of ['ImportStatus', 'ImportList', 'Accepted'] as const)
      expect(schemas[name], name).toEqual(derived[name]);
    expect(derived.ImportList).toMatchObject({
      properties: { value: { items: { $ref: '#/components/schemas/ImportStatus' } } },
    });
    expect(derived.ImportStatus).toMatchObject({
      additionalProperties: false,
      required: ['id', 'status', 'source', 'targets', 'createdAt', 'updatedAt', 'progress'],
    });
  });

  it('real handler answers parse: accepted, queued, succeeded (digest), listed, and a canceled one', async () => {
    const [src, dst] = await Promise.all([startFakeRegistry(), startFakeRegistry()]);
    regs = [src, dst];
    const t = testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${src.host},${dst.host}`,
      ALLOWED_SOURCES: src.host,
    });
    setImportService(t.service);
    const digest = seedImage(src, 'team/app', '1', Buffer.from('layer bytes of the status-view test'));

    const created = await createImportVia(
      t.queue,
      request('POST', 'imports', {
        body: JSON.stringify({ source: `${src.host}/team/app:1`, images: ['app:1'] }),
        headers: { 'content-type': 'application/json' },
      }),
      ctx(),
    );
    expect(created.status).toBe(202);
    const accepted = acceptedSchema.parse(bodyOf(created));
    const get = () => getImport(request('GET', `imports/${accepted.id}`, { params: { id: accepted.id } }), ctx());
    expect(importStatusSchema.parse(bodyOf(await get())).status).toBe('queued');

    await drain(t);
    const done = importStatusSchema.parse(bodyOf(await get()));
    expect(done).toMatchObject({ status: 'succeeded', digest, progress: { blobsTotal: 2, blobsDone: 2 } });

    const second = (await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:2'] }, 'http')).id;
    const canceled = await cancelImport(request('POST', `imports/${second}/cancel`, { params: { id: second } }), ctx());
    expect(canceled.status).toBe(202);
    expect(importStatusSchema.parse(bodyOf(canceled))).toMatchObject({
      status: 'canceled',
      error: { code: 'CANCELED' },
    });

    const list = importListSchema.parse(bodyOf(await listImports(request('GET', 'imports?limit=5'), ctx())));
    expect(list.value.map((v) => v.id)).toEqual([second, accepted.id]);
  });

  it('refuses what is not a status view', () => {
    expect(importStatusSchema.safeParse(VIEW).success).toBe(true);
    expect(importStatusSchema.safeParse({ ...VIEW, status: 'done' }).success).toBe(false);
    expect(importStatusSchema.safeParse({ ...VIEW, token: 'x' }).success).toBe(false);
    expect(importStatusSchema.safeParse({ ...VIEW, progress: { ...VIEW.progress, bytesCopied: -1 } }).success).toBe(
      false,
    );
    const { updatedAt: _u, ...missing } = VIEW;
    expect(importStatusSchema.safeParse(missing).success).toBe(false);
  });

  it('the CLI client parses answers with it: a wrong one is INVALID_ANSWER, an unknown field is kept', async () => {
    const seen = await answering({ ...VIEW, newField: 1 }).status(ID);
    expect(seen.body).toMatchObject({ id: ID, status: 'running', newField: 1 });
    const wrong = await answering({ ...VIEW, progress: { manifests: 1 } })
      .status(ID)
      .catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(ApiError);
    expect(wrong).toMatchObject({ code: 'INVALID_ANSWER' });
    expect((wrong as Error).message).toContain('progress.blobsTotal');
    await expect(answering({ value: [{ ...VIEW, status: 'done' }] }).list({})).rejects.toMatchObject({
      code: 'INVALID_ANSWER',
    });
  });
});
