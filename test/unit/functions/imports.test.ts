/**
 * The HTTP handlers with constructed HttpRequest/InvocationContext (no host): bad input gets a 4xx
 * with a code and the field named, and creates nothing; good input gets 202 and a status URL.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createImport, getImport, planStep } from '../../../functions/imports.js';
import { setImportService } from '../../../lib/service/runtime.js';
import { createImportVia } from '../../support/create-import.js';
import { testService, type TestService } from '../../support/service.js';

const KEY = Buffer.alloc(32, 7).toString('base64');

function post(body: string, headers: Record<string, string> = {}): HttpRequest {
  return new HttpRequest({
    method: 'POST',
    url: 'http://127.0.0.1:7071/api/imports',
    headers: { 'content-type': 'application/json', ...headers },
    body: { string: body },
  });
}

function ctx(): InvocationContext {
  return new InvocationContext({ functionName: 'createImport', invocationId: 'test', logHandler: () => undefined });
}

describe('POST /api/imports', () => {
  let t: TestService;
  beforeEach(() => {
    t = testService({
      TARGET_REGISTRY: 'myregistry.example',
      ALLOWED_SOURCES: '*,10.1.2.3:5000',
      CREDENTIAL_KEY: KEY,
      REGISTRY_CREDENTIALS__dockerhub__USERNAME: 'hubuser',
      REGISTRY_CREDENTIALS__dockerhub__PASSWORD: 'hub-secret-pw',
      REGISTRY_CREDENTIALS__dockerhub__REGISTRIES: 'docker.io,auth.docker.io',
    });
    setImportService(t.service);
  });
  afterEach(() => setImportService(undefined));

  const bad: [string, string, number, string, string | undefined][] = [
    ['bad JSON', '{"source": ', 400, 'INVALID_JSON', undefined],
    ['empty body', '', 400, 'INVALID_JSON', undefined],
    ['not an object', '["docker.io/library/nginx"]', 400, 'INVALID_BODY', undefined],
    ['missing source', '{"images":["nginx:1.27"]}', 400, 'MISSING_FIELD', 'source'],
    ['mistyped images', '{"source":"nginx:1.27","images":"nginx:1.27"}', 400, 'INVALID_TYPE', 'images'],
    ['mistyped force', '{"source":"nginx:1.27","force":"yes"}', 400, 'INVALID_TYPE', 'force'],
    ['misspelt field', '{"source":"nginx:1.27","imgaes":["nginx:1.27"]}', 400, 'UNKNOWN_FIELD', 'imgaes'],
    ['uppercase repository in source', '{"source":"docker.io/Library/Nginx:1.27"}', 400, 'INVALID_REFERENCE', 'source'],
    [
      'uppercase target repository',
      '{"source":"nginx:1.27","images":["Mirror/nginx:1.27"]}',
      400,
      'INVALID_REFERENCE',
      'images[0]',
    ],
    ['bad tag', '{"source":"nginx:1.27","images":["nginx:-bad"]}', 400, 'INVALID_REFERENCE', 'images[0]'],
    ['short digest', '{"source":"nginx@sha256:abc123"}', 400, 'INVALID_REFERENCE', 'source'],
    ['.. path', '{"source":"ghcr.io/org/../etc:1"}', 400, 'INVALID_REFERENCE', 'source'],
    ['.. in repository', '{"source":"nginx:1.27","repository":"a/../b"}', 400, 'INVALID_REFERENCE', 'repository'],
    [
      'repository with a tag',
      '{"source":"nginx:1.27","repository":"mirror/nginx:1.27"}',
      400,
      'INVALID_REFERENCE',
      'repository',
    ],
    [
      'repository with a digest',
      `{"source":"nginx:1.27","repository":"mirror/nginx@sha256:${'a'.repeat(64)}"}`,
      400,
      'INVALID_REFERENCE',
      'repository',
    ],
    [
      'link-local metadata address',
      '{"source":"169.254.169.254/latest/meta-data:1"}',
      400,
      'PRIVATE_ADDRESS',
      'source',
    ],
    ['loopback source', '{"source":"127.0.0.1:5000/app:1"}', 400, 'PRIVATE_ADDRESS', 'source'],
    ['bad platform', '{"source":"nginx:1.27","platforms":["linux"]}', 400, 'INVALID_PLATFORM', 'platforms[0]'],
    ['username without password', '{"source":"nginx:1.27","username":"u"}', 400, 'MISSING_FIELD', 'password'],
    [
      'unknown named credential',
      '{"source":"nginx:1.27","credential":"nope"}',
      400,
      'UNKNOWN_CREDENTIAL',
      'credential',
    ],
    ['other target', '{"source":"nginx:1.27","target":"other.example"}', 400, 'TARGET_NOT_ALLOWED', 'target'],
    [
      'digest as target image',
      `{"source":"nginx:1.27","images":["nginx@sha256:${'a'.repeat(64)}"]}`,
      400,
      'INVALID_REFERENCE',
      'images[0]',
    ],
    ['scheme in source', '{"source":"https://ghcr.io/org/app:1"}', 400, 'INVALID_REFERENCE', 'source'],
  ];

  it.each(bad)('refuses %s', async (_name, body, status, code, target) => {
    const res = await createImportVia(t.queue, post(body));
    expect(res.status).toBe(status);
    const json = res.jsonBody as { error: { code: string; message: string; target?: string } };
    expect(json.error.code).toBe(code);
    expect(json.error.message.length).toBeGreaterThan(10);
    if (target) {
      expect(json.error.target).toBe(target);
      expect(json.error.message).toContain(target.replace(/\[\d+\]$/, ''));
    }
    expect(t.queue.sent).toEqual([]);
    expect(t.docs.dump().size).toBe(0);
  });

  it('refuses bodies over 64 KiB with 413', async () => {
    const res = await createImportVia(
      t.queue,
      post(JSON.stringify({ source: 'nginx:1.27', images: ['x'.repeat(70_000)] })),
    );
    expect(res.status).toBe(413);
    expect((res.jsonBody as { error: { code: string } }).error.code).toBe('BODY_TOO_LARGE');
    expect(t.queue.sent).toEqual([]);
  });

  it('names the field it suggests for a typo', async () => {
    const res = await createImportVia(t.queue, post('{"source":"nginx:1.27","imgaes":["a:1"]}'));
    expect((res.jsonBody as { error: { message: string } }).error.message).toContain('did you mean "images"');
  });

  it('accepts a valid request: 202, Location, Retry-After, a plan step enqueued through the output binding', async () => {
    const c = ctx();
    const res = await createImport(
      post('{"source":"docker.io/library/nginx:1.27","images":["nginx:1.27","nginx:stable"]}'),
      c,
    );
    expect(res.status).toBe(202);
    const body = res.jsonBody as { id: string; status: string; statusUrl: string };
    expect(body.status).toBe('queued');
    expect(body.statusUrl).toBe(`http://127.0.0.1:7071/api/imports/${body.id}`);
    expect((res.headers as Record<string, string>).location).toBe(body.statusUrl);
    expect((res.headers as Record<string, string>)['retry-after']).toBe('5');
    // the host sends it (and wakes its queue listener) before the 202 leaves; nothing went out through the storage SDK
    expect(c.extraOutputs.get(planStep)).toEqual([{ v: 1, job: body.id, step: 'plan', mac: expect.any(String) }]);
    expect(t.queue.sent).toEqual([]);

    const status = await getImport(
      new HttpRequest({ method: 'GET', url: body.statusUrl, params: { id: body.id } }),
      ctx(),
    );
    expect(status.status).toBe(200);
    expect(status.jsonBody).toMatchObject({
      id: body.id,
      status: 'queued',
      source: 'docker.io/library/nginx:1.27',
      targets: ['myregistry.example/nginx:1.27', 'myregistry.example/nginx:stable'],
      progress: { manifests: 0, blobsTotal: 0, blobsDone: 0, bytesTotal: 0, bytesCopied: 0 },
    });
  });

  it('stores inline credentials encrypted and never returns or enqueues them', async () => {
    const res = await createImportVia(
      t.queue,
      post('{"source":"ghcr.io/org/app:1","username":"bob","password":"s3cret-pass-word"}'),
    );
    expect(res.status).toBe(202);
    const id = (res.jsonBody as { id: string }).id;
    const stored = [...t.docs.dump().values()].join('\n');
    expect(stored).not.toContain('s3cret-pass-word');
    expect(stored).not.toContain('bob');
    expect(JSON.stringify(t.queue.sent)).not.toContain('s3cret');
    const status = await getImport(
      new HttpRequest({ method: 'GET', url: `http://x/api/imports/${id}`, params: { id } }),
      ctx(),
    );
    expect(JSON.stringify(status.jsonBody)).not.toContain('s3cret');
  });

  it('refuses a source outside ALLOWED_SOURCES', async () => {
    t = testService({ TARGET_REGISTRY: 'myregistry.example', ALLOWED_SOURCES: 'docker.io,*.example.org' });
    setImportService(t.service);
    const refused = await createImportVia(t.queue, post('{"source":"evil.example.com/app:1"}'));
    expect(refused.status).toBe(400);
    expect(refused.jsonBody).toMatchObject({ error: { code: 'SOURCE_NOT_ALLOWED', target: 'source' } });
    expect((refused.jsonBody as { error: { message: string } }).error.message).toContain('evil.example.com');
    expect(t.queue.sent).toEqual([]);
    expect((await createImportVia(t.queue, post('{"source":"nginx:1.27"}'))).status).toBe(202);
    expect((await createImportVia(t.queue, post('{"source":"cr.example.org/app:1"}'))).status).toBe(202);
  });

  it('accepts a private source only when listed explicitly', async () => {
    const res = await createImportVia(t.queue, post('{"source":"10.1.2.3:5000/team/app:1"}'));
    expect(res.status).toBe(202);
  });

  it('answers 404 for an unknown id', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    const res = await getImport(
      new HttpRequest({ method: 'GET', url: `http://x/api/imports/${id}`, params: { id } }),
      ctx(),
    );
    expect(res.status).toBe(404);
    expect((res.jsonBody as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});
