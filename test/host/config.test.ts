/** Unit tests of the local host's route templates, host.json / settings handling, storage encoding and glob. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { QueueClient } from '@azure/storage-queue';
import { expandGlob } from '../../scripts/host/glob.js';
import { authorized, refuseForeign } from '../../scripts/host/http-trigger.js';
import { queueMessagesOf } from '../../scripts/host/outputs.js';
import { Lease } from '../../scripts/host/queue-trigger.js';
import { compareRoutes, compileRoute, matchRoute, RouteError } from '../../scripts/host/route.js';
import {
  applyHostJsonOverrides,
  applyLocalSettings,
  DEFAULT_QUEUE_OPTIONS,
  parseHostJson,
  readLocalSettings,
  resolveSettingRefs,
  resolveStorageConnection,
  validateQueueName,
} from '../../scripts/host/settings.js';
import { decodeMessage, encodeMessage } from '../../scripts/host/storage.js';

describe('route templates', () => {
  it.each([
    ['imports', 'imports', {}],
    ['imports', 'IMPORTS', {}],
    ['imports', 'imports/', {}],
    ['imports/{id}', 'imports/abc', { id: 'abc' }],
    ['imports/{id}', 'imports/a%20b', { id: 'a b' }],
    ['imports/{id?}', 'imports', {}],
    ['imports/{id?}', 'imports/7', { id: '7' }],
    ['items/{id:int}', 'items/42', { id: '42' }],
    ['items/{id=first}', 'items', { id: 'first' }],
    ['files/{*path}', 'files/a/b/c.txt', { path: 'a/b/c.txt' }],
    ['files/{*path}', 'files', {}],
    ['files/{name}.{ext}', 'files/report.final.pdf', { name: 'report.final', ext: 'pdf' }],
    ['v{version:int}/x', 'v2/x', { version: '2' }],
  ])('%s matches %s', (template, path, params) => {
    expect(matchRoute(compileRoute(template), path)).toEqual(params);
  });

  it.each([
    ['imports', 'imports/1'],
    ['imports/{id}', 'imports'],
    ['imports/{id}', 'imports/1/2'],
    ['items/{id:int}', 'items/abc'],
    ['items/{id:guid}', 'items/123'],
    ['items/{id:alpha:minlength(3)}', 'items/ab'],
    ['imports/{id}', 'imports/%E0%A4%A'],
  ])('%s does not match %s', (template, path) => {
    expect(matchRoute(compileRoute(template), path)).toBeNull();
  });

  it('orders literal before parameter before catch-all', () => {
    const routes = ['files/{*rest}', 'files/{id}', 'files/latest', 'files/{id:int}'].map(compileRoute);
    expect(routes.sort(compareRoutes).map((r) => r.template)).toEqual([
      'files/latest',
      'files/{id:int}',
      'files/{id}',
      'files/{*rest}',
    ]);
  });

  it.each(['a/{*rest}/b', 'a/{id}/{id}', 'a/{bad-name}', 'a/{id:nonsense}', 'a//b'])('refuses %s', (template) => {
    expect(() => compileRoute(template)).toThrow(RouteError);
  });
});

describe('host.json', () => {
  it('defaults', () => {
    const h = parseHostJson({ version: '2.0' });
    expect(h.queues).toEqual(DEFAULT_QUEUE_OPTIONS);
    expect(h.functionTimeoutMs).toBe(30 * 60 * 1000);
    expect(h.routePrefix).toBe('api');
    expect(h.logLevel).toBe('information');
  });

  it('reads extensions.queues, functionTimeout, routePrefix and log level', () => {
    const h = parseHostJson({
      functionTimeout: '00:10:00',
      logging: { logLevel: { default: 'Debug' } },
      extensions: {
        http: { routePrefix: '/v1/' },
        queues: {
          batchSize: 4,
          newBatchThreshold: 2,
          maxDequeueCount: 5,
          visibilityTimeout: '00:00:10',
          maxPollingInterval: '00:00:02',
          messageEncoding: 'none',
        },
      },
    });
    expect(h.queues).toEqual({
      batchSize: 4,
      newBatchThreshold: 2,
      maxDequeueCount: 5,
      visibilityTimeoutMs: 10_000,
      maxPollingIntervalMs: 2000,
      messageEncoding: 'none',
    });
    expect(h.functionTimeoutMs).toBe(600_000);
    expect(h.routePrefix).toBe('v1');
    expect(h.logLevel).toBe('debug');
    expect(parseHostJson({ extensions: { queues: { batchSize: 8 } } }).queues.newBatchThreshold).toBe(4);
    expect(parseHostJson({ functionTimeout: '-1' }).functionTimeoutMs).toBeNull();
  });

  it.each([
    [{ extensions: { queues: { batchSize: 33 } } }, /batchSize/],
    [{ extensions: { queues: { maxDequeueCount: 0 } } }, /maxDequeueCount/],
    [{ extensions: { queues: { visibilityTimeout: 10 } } }, /TimeSpan/],
    [{ extensions: { queues: { maxPollingInterval: '00:00:00.050' } } }, /at least 100 ms/],
    [{ extensions: { queues: { messageEncoding: 'utf8' } } }, /messageEncoding/],
  ])('refuses %j', (raw, message) => {
    expect(() => parseHostJson(raw)).toThrow(message);
  });
});

describe('host.json overrides from app settings (AzureFunctionsJobHost__…)', () => {
  const hostJson = {
    version: '2.0',
    functionTimeout: '00:10:00',
    extensions: { queues: { maxDequeueCount: 5, batchSize: 4 } },
  };

  it("override values by path, case-insensitively, keeping the file's spelling; the input is not changed", () => {
    const { json, overridden } = applyHostJsonOverrides(hostJson, {
      AzureFunctionsJobHost__extensions__queues__maxDequeueCount: '2',
      azurefunctionsjobhost__FUNCTIONTIMEOUT: '00:00:05',
      AzureFunctionsJobHost__extensions__http__routePrefix: 'v1',
      UNRELATED: 'x',
    });
    const parsed = parseHostJson(json);
    expect(parsed.queues.maxDequeueCount).toBe(2);
    expect(parsed.queues.batchSize).toBe(4);
    expect(parsed.functionTimeoutMs).toBe(5000);
    expect(parsed.routePrefix).toBe('v1');
    expect(overridden.sort()).toEqual([
      'extensions.http.routePrefix',
      'extensions.queues.maxDequeueCount',
      'functionTimeout',
    ]);
    expect(hostJson.extensions.queues.maxDequeueCount).toBe(5);
  });

  it('an override that is not valid is refused like a bad host.json value', () => {
    const { json } = applyHostJsonOverrides(hostJson, {
      AzureFunctionsJobHost__extensions__queues__maxDequeueCount: 'many',
    });
    expect(() => parseHostJson(json)).toThrow(/maxDequeueCount/);
  });
});

describe('HTTP guard: keys, Host and Origin', () => {
  const keys = { functionKey: 'fk', masterKey: 'mk' };

  it.each([
    ['anonymous', undefined, null, true],
    ['function', undefined, null, false],
    ['function', 'fk', null, true],
    ['function', undefined, 'fk', true],
    ['function', 'mk', null, true],
    ['function', 'wrong', 'fk', false], // the header wins
    ['function', '', 'fk', false],
    ['function', 'FK', null, false],
    ['admin', 'fk', null, false],
    ['admin', 'mk', null, true],
  ] as const)('authLevel %s, header %j, code %j → %s', (level, header, code, ok) => {
    expect(authorized(level, header, code, keys)).toBe(ok);
  });

  it('without configured keys every level is open (Core Tools behaviour)', () => {
    expect(authorized('function', undefined, null, undefined)).toBe(true);
    expect(authorized('admin', undefined, null, {})).toBe(true);
  });

  it.each([
    [{ host: '127.0.0.1:7071' }, undefined],
    [{ host: 'LOCALHOST:7071' }, undefined],
    [{ host: '[::1]:7071' }, undefined],
    [{ host: '127.0.0.1:7071', origin: 'http://localhost:7071' }, undefined],
    [{}, /Host/],
    [{ host: 'attacker.example:7071' }, /Host/],
    [{ host: '127.0.0.1' }, /Host/],
    [{ host: '127.0.0.1:8080' }, /Host/],
    [{ host: '127.0.0.2:7071' }, /Host/],
    [{ host: '127.0.0.1:7071', origin: 'https://127.0.0.1:7071' }, /Origin/],
    [{ host: '127.0.0.1:7071', origin: 'http://attacker.example' }, /Origin/],
    [{ host: '127.0.0.1:7071', origin: 'null' }, /Origin/],
  ])('headers %j → %s', (headers, refused) => {
    const why = refuseForeign(headers, 7071);
    if (refused) expect(why).toMatch(refused);
    else expect(why).toBeUndefined();
  });
});

describe('queue message lease', () => {
  afterEach(() => vi.useRealTimers());

  it('renews a running message at half its lease, for the full lease each time (600 s as in Azure)', async () => {
    vi.useFakeTimers();
    const calls: { visibility: number | undefined; at: number }[] = [];
    const started = Date.now();
    const queue = {
      updateMessage: async (_id: string, _receipt: string, _text: string | undefined, visibility?: number) => {
        calls.push({ visibility, at: Date.now() - started });
        return { popReceipt: `receipt-${calls.length}` };
      },
    } as unknown as QueueClient;
    const lease = new Lease(queue, 'm1', 'receipt-0', 600, () => undefined);
    await vi.advanceTimersByTimeAsync(299_000);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toEqual([{ visibility: 600, at: 300_000 }]);
    await vi.advanceTimersByTimeAsync(300_000);
    expect(calls.map((c) => c.at)).toEqual([300_000, 600_000]);
    expect(await lease.stop()).toBe('receipt-2');
  });
});

describe('settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'host-settings-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('local.settings.json Values fill the environment; the environment wins', () => {
    const file = join(dir, 'local.settings.json');
    writeFileSync(
      file,
      JSON.stringify({
        IsEncrypted: false,
        Values: { A: 'from-file', B: 'from-file', N: 5 },
        Host: { LocalHttpPort: 7080 },
      }),
    );
    const settings = readLocalSettings(file);
    expect(settings.localHttpPort).toBe(7080);
    const env: Record<string, string | undefined> = { A: 'from-env' };
    expect(applyLocalSettings(settings, env).sort()).toEqual(['B', 'N']);
    expect(env).toEqual({ A: 'from-env', B: 'from-file', N: '5' });
    expect(readLocalSettings(join(dir, 'missing.json')).values).toEqual({});
  });

  it('resolves %SETTING% expressions, with an optional documented default', () => {
    expect(resolveSettingRefs('%Q%', { Q: 'imports' }, 'x').value).toBe('imports');
    expect(resolveSettingRefs('pre-%Q%-%R%', { Q: 'a', R: 'b' }, 'x').value).toBe('pre-a-b');
    expect(() => resolveSettingRefs('%MISSING%', {}, "function 'f' queueName")).toThrow(
      /'%MISSING%' does not resolve to a value/,
    );
    const r = resolveSettingRefs('%S%', {}, 'x', (name) => (name === 'S' ? '0 0 * * * *' : undefined));
    expect(r).toEqual({ value: '0 0 * * * *', defaulted: ['S'] });
    expect(resolveSettingRefs('no refs', {}, 'x').value).toBe('no refs');
  });

  it('storage connections: development storage, explicit endpoints, identity', () => {
    const dev = resolveStorageConnection(undefined, {});
    expect(dev).toMatchObject({
      kind: 'connectionString',
      setting: 'AzureWebJobsStorage',
      isDevelopmentStorage: true,
      queueEndpoint: 'http://127.0.0.1:10001/devstoreaccount1',
    });
    expect(
      resolveStorageConnection('AzureWebJobsStorage', { AzureWebJobsStorage: 'UseDevelopmentStorage=true' })
        .isDevelopmentStorage,
    ).toBe(true);

    const custom = resolveStorageConnection('AzureWebJobsStorage', {
      AzureWebJobsStorage:
        'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=k==;QueueEndpoint=http://127.0.0.1:20001/devstoreaccount1;BlobEndpoint=http://127.0.0.1:20000/devstoreaccount1;TableEndpoint=http://127.0.0.1:20002/devstoreaccount1',
    });
    expect(custom).toMatchObject({
      isDevelopmentStorage: false,
      queueEndpoint: 'http://127.0.0.1:20001/devstoreaccount1',
    });

    const cloud = resolveStorageConnection('MyStorage', {
      AzureWebJobsMyStorage:
        'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=k==;EndpointSuffix=core.windows.net',
    });
    expect(cloud.queueEndpoint).toBe('https://acct.queue.core.windows.net');

    expect(resolveStorageConnection('AzureWebJobsStorage', { AzureWebJobsStorage__accountName: 'acct' })).toEqual({
      kind: 'identity',
      setting: 'AzureWebJobsStorage',
      queueEndpoint: 'https://acct.queue.core.windows.net',
      isDevelopmentStorage: false,
    });
    expect(() => resolveStorageConnection('Nope', {})).toThrow(/no app setting Nope/);
  });

  it('queue names follow the storage rules', () => {
    expect(() => validateQueueName('imports', 'q')).not.toThrow();
    for (const bad of ['Imports', 'ab', 'a--b', '-ab', 'ab-', 'a_b', 'x'.repeat(64)]) {
      expect(() => validateQueueName(bad, 'q')).toThrow(/not a valid queue name/);
    }
  });
});

describe('queue message encoding and outputs', () => {
  it('base64 round trip; invalid base64 is refused; none passes text through', () => {
    const encoded = encodeMessage('{"a":"é"}', 'base64');
    expect(encoded).toBe(Buffer.from('{"a":"é"}').toString('base64'));
    expect(decodeMessage(encoded, 'base64')).toEqual({ ok: true, text: '{"a":"é"}' });
    expect(decodeMessage('not base64!', 'base64')).toEqual({ ok: false });
    expect(decodeMessage('abc', 'base64')).toEqual({ ok: false });
    expect(decodeMessage('plain', 'none')).toEqual({ ok: true, text: 'plain' });
  });

  it('a JSON array output is one message per element', () => {
    expect(queueMessagesOf({ json: JSON.stringify(['a', { b: 1 }, 2]) })).toEqual(['a', '{"b":1}', '2']);
    expect(queueMessagesOf({ json: '{"b":1}' })).toEqual(['{"b":1}']);
    expect(queueMessagesOf({ string: '["not split"]' })).toEqual(['["not split"]']);
    expect(queueMessagesOf({ int: 5 })).toEqual(['5']);
    expect(queueMessagesOf(undefined)).toEqual([]);
  });
});

describe('glob for package.json main', () => {
  const dir = mkdtempSync(join(tmpdir(), 'host-glob-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('supports *, ** and braces, files only, sorted', () => {
    for (const f of [
      'dist/functions/b.js',
      'dist/functions/a.js',
      'dist/functions/a.js.map',
      'dist/functions/sub/c.js',
      'dist/index.js',
    ]) {
      mkdirSync(join(dir, f, '..'), { recursive: true });
      writeFileSync(join(dir, f), '');
    }
    const rel = (files: string[]): string[] => files.map((f) => f.slice(dir.length + 1));
    expect(rel(expandGlob(dir, 'dist/functions/*.js'))).toEqual(['dist/functions/a.js', 'dist/functions/b.js']);
    expect(rel(expandGlob(dir, 'dist/{index.js,functions/*.js}'))).toEqual([
      'dist/functions/a.js',
      'dist/functions/b.js',
      'dist/index.js',
    ]);
    expect(rel(expandGlob(dir, 'dist/**/*.js'))).toEqual([
      'dist/functions/a.js',
      'dist/functions/b.js',
      'dist/functions/sub/c.js',
      'dist/index.js',
    ]);
    expect(expandGlob(dir, 'nothing/*.js')).toEqual([]);
    expect(rel(expandGlob('/', join(dir, 'dist/index.js')))).toEqual(['dist/index.js']);
  });
});
