/**
 * The local Functions host as a separate process, with fixture function modules (test/host/fixtures)
 * registered through the real @azure/functions library, against an in-memory Azurite. The functions run
 * in the host's worker process: the tests time it out and crash it, and check what the host does then.
 *
 * These are contract tests of the emulator (scripts/host), not of Azure: "as Azure does" means as the local
 * host's model of Azure says, and each such behaviour is taken from a Microsoft source named in
 * scripts/host/README.md ("Semantics implemented") and in docs/testing.md; no test here can tell whether Azure
 * still behaves that way.
 */
import { request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';
import { FIXTURE_HOST_ARGS, startHost, waitFor, type HostProcess } from './host-process.js';

interface Seen {
  fn: string;
  payload: unknown;
  meta?: Record<string, unknown>;
  at: string;
  pid: number;
}

const suffix = randomBytes(3).toString('hex');
const QUEUE = `fx-work-${suffix}`;
const FAIL_QUEUE = `fx-fail-${suffix}`;
const OUT_QUEUE = `fx-out-${suffix}`;
const QUEUE_SECRET = `queue-secret-${suffix}`;
const HTTP_SECRET = `http-secret-${suffix}`;
const FUNCTION_KEY = `fkey-${randomBytes(12).toString('hex')}`;
const MASTER_KEY = `mkey-${randomBytes(12).toString('hex')}`;
const BODY_LIMIT = 1024 * 1024;

/** A raw HTTP/1.1 request (fetch cannot set Host, nor send a chunked body from a string). */
function rawRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; chunked?: boolean },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let status: number | undefined;
    let body = '';
    const req = httpRequest(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: status!, body }));
      res.on('error', () => resolve({ status: status!, body }));
    });
    // A server that answers early (413) and closes may reset the upload: the answer still counts.
    req.on('error', (err) => (status === undefined ? reject(err) : resolve({ status, body })));
    if (opts.chunked && opts.body !== undefined) {
      req.setHeader('transfer-encoding', 'chunked');
      req.write(opts.body);
      req.end();
    } else {
      req.end(opts.body);
    }
  });
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

describe('local Functions host (process + Azurite)', () => {
  let azurite: RunningAzurite;
  let host: HostProcess;
  let queues: QueueServiceClient;
  const stateDir = mkdtempSync(join(tmpdir(), 'host-fixture-state-'));
  const key = { 'x-functions-key': FUNCTION_KEY };
  const workerPid = async (): Promise<number> =>
    ((await (await fetch(`${host.url}/admin/host/status`)).json()) as { worker: { pid: number } }).worker.pid;
  const tagged = async (tag: string): Promise<Seen[]> =>
    (await seen('queueWorker')).filter((s) => (s.payload as { tag?: string }).tag === tag);

  // Read from the fixtures' state file, not through the `seen` function: the tests crash the worker that runs it.
  const seen = async (fn: string): Promise<Seen[]> => {
    const file = join(stateDir, 'seen.jsonl');
    const lines = existsSync(file)
      ? readFileSync(file, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
      : [];
    return lines.map((l) => JSON.parse(l) as Seen).filter((s) => s.fn === fn);
  };

  beforeAll(async () => {
    azurite = await startAzurite();
    queues = QueueServiceClient.fromConnectionString(azurite.connectionString);
    host = await startHost({
      args: [...FIXTURE_HOST_ARGS],
      env: {
        AzureWebJobsStorage: azurite.connectionString,
        FIXTURE_QUEUE: QUEUE,
        FIXTURE_FAIL_QUEUE: FAIL_QUEUE,
        FIXTURE_OUT_QUEUE: OUT_QUEUE,
        FIXTURE_TIMER_SCHEDULE: undefined,
        FIXTURE_STATE_FILE: join(stateDir, 'seen.jsonl'),
        LOCAL_HOST_QUEUE_LEASE_SECONDS: '2',
        LOCAL_HOST_SHUTDOWN_GRACE_SECONDS: '3',
        LOCAL_HOST_FUNCTION_KEY: FUNCTION_KEY,
        LOCAL_HOST_MASTER_KEY: MASTER_KEY,
        FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: String(BODY_LIMIT),
        // App settings over host.json, as in Azure (the fixture host.json says 00:01:00 and 2).
        AzureFunctionsJobHost__functionTimeout: '00:00:06',
        azurefunctionsjobhost__Extensions__Queues__MaxDequeueCount: '3',
      },
    });
  });

  afterAll(async () => {
    if (process.env.DEBUG_HOST_OUTPUT) process.stderr.write(host?.output() ?? '');
    await host?.stop('SIGKILL');
    await azurite?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('prints a banner with the functions, their URLs, queues and schedules', () => {
    const out = host.output();
    expect(out).toContain(`echo: [GET,POST] ${host.url}/api/items/{id}/{sub?}`);
    expect(out).toContain(`ping: [GET] ${host.url}/api/ping`);
    expect(out).toContain(`queueWorker: queueTrigger '${QUEUE}' (poison '${QUEUE}-poison')`);
    expect(out).toMatch(/tick: timerTrigger \* \* \* \* \* \* \(every second, UTC\), runOnStartup/);
    expect(out).toContain(`queue http://127.0.0.1:${azurite.queuePort}/devstoreaccount1`);
    expect(out).toContain('maxDequeueCount 3');
    expect(out).toContain(
      'functionTimeout 6s; queue lease 2s renewed at half; overridden by AzureFunctionsJobHost__*: extensions.queues.maxDequeueCount, functionTimeout',
    );
    expect(out).toMatch(/worker process pid \d+/);
    expect(out).not.toContain('AccountKey');
    expect(out).not.toContain('Eby8vdM02');
    expect(out).not.toContain(FUNCTION_KEY);
    expect(out).not.toContain(MASTER_KEY);
  });

  it('routes HTTP requests with route params, query, JSON body, headers and cookies', async () => {
    const res = await fetch(`${host.url}/api/items/42/extra?q=hi`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...key },
      body: JSON.stringify({ hello: 'world', password: HTTP_SECRET }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-fixture')).toBe('echo');
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('set-cookie')).toBe('fixture=yes; Path=/; HttpOnly');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      id: '42',
      sub: 'extra',
      method: 'POST',
      q: 'hi',
      contentType: 'application/json',
      body: { hello: 'world', password: HTTP_SECRET },
      url: `${host.url}/api/items/42/extra?q=hi`,
      realRequest: true,
      functionName: 'echo',
      triggerMetadata: null,
    });
    expect(body.invocationId).toMatch(/^[0-9a-f-]{36}$/);

    const optional = (await (await fetch(`${host.url}/api/ITEMS/7`, { headers: key })).json()) as Record<
      string,
      unknown
    >;
    expect(optional).toMatchObject({ id: '7', sub: null, method: 'GET', body: null });
  });

  it('default route, hooks, 404 (also for a wrong method), 500 without details, empty 413 over FUNCTIONS_REQUEST_BODY_SIZE_LIMIT', async () => {
    const ping = await fetch(`${host.url}/api/ping`);
    expect(ping.status).toBe(200);
    expect(await ping.text()).toBe('pong (post-hook)');

    expect((await fetch(`${host.url}/api/nothing-here`)).status).toBe(404);
    expect((await fetch(`${host.url}/elsewhere`)).status).toBe(404);

    // The methods are a route constraint in Azure: no route matches, 404 (not 405), no Allow header.
    const put = await fetch(`${host.url}/api/items/1`, { method: 'PUT', body: 'x', headers: key });
    expect(put.status).toBe(404);
    expect(put.headers.get('allow')).toBeNull();

    const boom = await fetch(`${host.url}/api/boom`);
    expect(boom.status).toBe(500);
    const boomBody = await boom.text();
    expect(boomBody).toBe('');
    expect(host.output()).toContain('kaboom with secret-xyz-123'); // logged by the host, not returned

    const big = await rawRequest(`${host.url}/api/touch`, { method: 'POST', body: Buffer.alloc(BODY_LIMIT + 1, 0x61) });
    expect(big).toEqual({ status: 413, body: '' });
    const justUnder = await rawRequest(`${host.url}/api/touch`, {
      method: 'POST',
      body: Buffer.alloc(BODY_LIMIT, 0x61),
    });
    expect(justUnder.status).toBe(200);
    expect(JSON.parse(justUnder.body)).toEqual({ bodyLength: BODY_LIMIT });

    const health = await fetch(`${host.url}/admin/host/status`);
    expect(await health.json()).toMatchObject({ state: 'Running' });
  });

  // Azure/azure-functions-host GrpcMessageConversionExtensions.cs (a body only when ContentLength > 0);
  // azure-functions-host#4926, azure-functions-nodejs-worker#524.
  it('delivers a body without Content-Length (chunked) to the function empty, as Azure does (emulator contract)', async () => {
    const chunked = await rawRequest(`${host.url}/api/touch`, {
      method: 'POST',
      body: '{"hello":"chunked"}',
      chunked: true,
    });
    expect(chunked.status).toBe(200);
    expect(JSON.parse(chunked.body)).toEqual({ bodyLength: 0 });
    const sized = await rawRequest(`${host.url}/api/touch`, { method: 'POST', body: '{"hello":"sized"}' });
    expect(JSON.parse(sized.body)).toEqual({ bodyLength: 17 });
    expect(host.output()).toContain('reaches the function empty, as in Azure');
  });

  it('demands the function key for authLevel function (x-functions-key, else code) and the master key for admin: empty 401 without', async () => {
    const url = `${host.url}/api/items/1`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect(await none.text()).toBe('');
    expect((await fetch(url, { headers: { 'x-functions-key': 'wrong' } })).status).toBe(401);
    expect((await fetch(url, { headers: key })).status).toBe(201);
    expect((await fetch(`${url}?code=${FUNCTION_KEY}`)).status).toBe(201);
    // The header wins over the query (AuthenticationLevelHandler): a wrong header is not rescued by a right code.
    expect((await fetch(`${url}?code=${FUNCTION_KEY}`, { headers: { 'x-functions-key': 'wrong' } })).status).toBe(401);
    expect((await fetch(url, { headers: { 'x-functions-key': MASTER_KEY } })).status).toBe(201);

    expect((await fetch(`${host.url}/api/admin-only`, { headers: key })).status).toBe(401);
    expect((await fetch(`${host.url}/api/admin-only`, { headers: { 'x-functions-key': MASTER_KEY } })).status).toBe(
      200,
    );
    expect((await fetch(`${host.url}/api/ping`)).status).toBe(200); // anonymous
    expect(host.output()).not.toContain(FUNCTION_KEY);
  });

  it('refuses a foreign Host or browser Origin with 403 before any handler runs', async () => {
    const port = new URL(host.url).port;
    const before = (await seen('touch')).length;
    const touch = (headers: Record<string, string>) =>
      rawRequest(`${host.url}/api/touch`, { method: 'POST', headers, body: '{}' });
    expect((await touch({ host: `evil.example:${port}` })).status).toBe(403);
    expect((await touch({ host: `127.0.0.1:${Number(port) + 1}` })).status).toBe(403);
    expect((await touch({ host: 'localhost' })).status).toBe(403);
    expect((await touch({ origin: 'http://evil.example' })).status).toBe(403);
    expect((await touch({ origin: 'null' })).status).toBe(403);
    expect((await touch({ origin: `http://127.0.0.1:${Number(port) + 1}` })).status).toBe(403);
    expect(
      (await rawRequest(`${host.url}/admin/host/status`, { headers: { host: `rebound.example:${port}` } })).status,
    ).toBe(403);
    expect(
      (await rawRequest(`${host.url}/api/items/1`, { headers: { host: `evil.example:${port}`, ...key } })).status,
    ).toBe(403);
    expect((await seen('touch')).length).toBe(before);

    expect((await touch({ host: `localhost:${port}` })).status).toBe(200);
    expect((await touch({ host: `[::1]:${port}` })).status).toBe(200);
    expect((await touch({ origin: `http://localhost:${port}` })).status).toBe(200);
    expect((await touch({ origin: `http://127.0.0.1:${port}` })).status).toBe(200);
    expect((await seen('touch')).length).toBe(before + 4);
  });

  it('delivers queue messages decoded and JSON-parsed with trigger metadata, then deletes them', async () => {
    const q = queues.getQueueClient(QUEUE);
    await q.sendMessage(b64(JSON.stringify({ hello: 'world', secret: QUEUE_SECRET })));
    await q.sendMessage(b64('123'));
    await q.sendMessage(b64('plain text'));

    const got = await waitFor(async () => {
      const s = await seen('queueWorker');
      return s.length >= 3 ? s : undefined;
    }, 'three queue invocations');
    const byPayload = (p: unknown): Seen | undefined =>
      got.find((s) => JSON.stringify(s.payload) === JSON.stringify(p));
    const viaHttp = await fetch(`${host.url}/api/seen/queueWorker`);
    expect(((await viaHttp.json()) as Seen[]).length).toBe((await seen('queueWorker')).length);
    const json = byPayload({ hello: 'world', secret: QUEUE_SECRET });
    expect(json).toBeDefined();
    expect(json!.meta).toMatchObject({ dequeueCount: 1, queueTrigger: { hello: 'world', secret: QUEUE_SECRET } });
    expect(json!.meta!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(typeof json!.meta!.popReceipt).toBe('string');
    expect(Number.isNaN(Date.parse(String(json!.meta!.insertionTime)))).toBe(false);
    expect(Number.isNaN(Date.parse(String(json!.meta!.expirationTime)))).toBe(false);
    expect(byPayload(123)).toBeDefined(); // "123" arrives as a number, as with the real library
    expect(byPayload('plain text')).toBeDefined();

    // Deleted after success: nothing left, visible or invisible.
    await waitFor(
      async () => ((await q.getProperties()).approximateMessagesCount === 0 ? true : undefined),
      'queue to be empty',
    );
    expect(host.output()).toMatch(
      new RegExp(
        `Executed 'Functions\\.queueWorker' \\(Succeeded, Id=[0-9a-f-]+, Duration=\\d+ms\\) queue=${QUEUE} messageId=${json!.meta!.id as string} dequeueCount=1`,
      ),
    );
  });

  it('keeps a long-running message invisible by renewing its lease (lease 2 s, handler 3.5 s)', async () => {
    const q = queues.getQueueClient(QUEUE);
    await q.sendMessage(b64(JSON.stringify({ sleepMs: 3500, tag: 'slow' })));
    await waitFor(
      async () =>
        (await seen('queueWorker')).some((s) => (s.payload as { tag?: string }).tag === 'slow') ? true : undefined,
      'slow invocation',
    );
    await waitFor(
      async () => ((await q.getProperties()).approximateMessagesCount === 0 ? true : undefined),
      'slow message deleted',
      8000,
    );
    const slow = (await seen('queueWorker')).filter((s) => (s.payload as { tag?: string }).tag === 'slow');
    expect(slow).toHaveLength(1);
    expect(slow[0]!.meta!.dequeueCount).toBe(1);
  });

  it('sends queue output bindings (a JSON array becomes one message per element)', async () => {
    await queues.getQueueClient(QUEUE).sendMessage(b64(JSON.stringify({ forward: 'hello-out' })));
    const out = queues.getQueueClient(OUT_QUEUE);
    const texts = await waitFor(async () => {
      if (!(await out.exists())) return undefined;
      const peeked = await out.peekMessages({ numberOfMessages: 32 });
      return peeked.peekedMessageItems.length >= 2
        ? peeked.peekedMessageItems.map((m) => unb64(m.messageText))
        : undefined;
    }, 'two forwarded messages');
    expect(texts.sort()).toEqual(['hello-out', '{"forwarded":true}']);
  });

  it("sends an HTTP function's queue outputs before it answers: a send that fails is an empty 500, not its answer", async () => {
    const post = (messages: unknown[]) =>
      fetch(`${host.url}/api/enqueue`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages }),
      });
    const ok = await post([{ tag: 'from-http', secret: QUEUE_SECRET }]);
    expect(ok.status).toBe(202);
    expect(await ok.json()).toEqual({ queued: 1 });
    const [got] = await waitFor(async () => {
      const s = await tagged('from-http');
      return s.length ? s : undefined;
    }, 'the message the HTTP function sent');
    expect(got!.payload).toEqual({ tag: 'from-http', secret: QUEUE_SECRET });

    // over the queue's 64 KiB: storage refuses it, after the function returned its 202
    const before = (await seen('enqueue')).length;
    const refused = await post([{ tag: 'too-big', pad: 'x'.repeat(70_000) }]);
    expect(refused.status).toBe(500);
    expect(await refused.text()).toBe('');
    expect((await seen('enqueue')).length).toBe(before + 1);
    expect(host.output()).toMatch(/Exception while executing function: Functions\.enqueue: .*too large/);
    await waitFor(
      async () => (/POST \/api\/enqueue -> 500 Functions\.enqueue/.test(host.output()) ? true : undefined),
      'the request logged with its 500',
    );
  });

  it('moves a message that always fails to <queue>-poison after maxDequeueCount attempts', async () => {
    const text = b64(JSON.stringify({ doomed: true }));
    await queues.getQueueClient(FAIL_QUEUE).sendMessage(text);
    const poison = queues.getQueueClient(`${FAIL_QUEUE}-poison`);
    const poisoned = await waitFor(async () => {
      const peeked = await poison.peekMessages({ numberOfMessages: 32 });
      return peeked.peekedMessageItems.length > 0 ? peeked.peekedMessageItems : undefined;
    }, 'poison message');
    expect(poisoned.map((m) => m.messageText)).toEqual([text]); // same text, still base64
    const attempts = await seen('alwaysFails');
    // host.json says maxDequeueCount 2; the app setting AzureFunctionsJobHost__extensions__queues__maxDequeueCount 3 wins.
    expect(attempts.map((a) => a.meta!.dequeueCount)).toEqual([1, 2, 3]);
    // Like the Functions host, the local host copies the text to the poison queue first and deletes the original
    // after: for a moment the message is in both queues.
    const failQueue = queues.getQueueClient(FAIL_QUEUE);
    await waitFor(
      async () => ((await failQueue.getProperties()).approximateMessagesCount === 0 ? true : undefined),
      'failed message deleted from its queue',
    );
    // the host logs the move once the delete is done: the line may reach its output a moment after the queue shows it
    const line = `reached MaxDequeueCount of 3, moved to '${FAIL_QUEUE}-poison'`;
    await waitFor(async () => (host.output().includes(line) ? true : undefined), 'the log line of the move');
  });

  it('sends a message that is not base64 straight to the poison queue without invoking', async () => {
    const before = (await seen('queueWorker')).length;
    await queues.getQueueClient(QUEUE).sendMessage('this is not base64!');
    const poison = queues.getQueueClient(`${QUEUE}-poison`);
    await waitFor(async () => {
      const peeked = await poison.peekMessages({ numberOfMessages: 32 });
      return peeked.peekedMessageItems.some((m) => m.messageText === 'this is not base64!') ? true : undefined;
    }, 'invalid message in poison queue');
    expect((await seen('queueWorker')).length).toBe(before);
  });

  it('fires an every-second timer (runOnStartup first) with a timer object', async () => {
    const ticks = await waitFor(
      async () => {
        const s = await seen('tick');
        return s.length >= 3 ? s : undefined;
      },
      'three timer ticks',
      5000,
    );
    for (const t of ticks) {
      expect(t.payload).toMatchObject({ isPastDue: false, schedule: { adjustForDST: false } });
      expect((t.payload as { scheduleStatus: { next: string } }).scheduleStatus.next).toMatch(/Z$/);
    }
    expect(host.output()).toContain("Executed 'Functions.tick' (Succeeded");
    expect(host.output()).toContain('reason=runOnStartup');
  });

  it('an unhandled promise rejection kills the worker: every invocation in flight fails, is retried on a new worker and succeeds', async () => {
    const q = queues.getQueueClient(QUEUE);
    const first = await workerPid();
    await q.sendMessage(b64(JSON.stringify({ tag: 'rejection-bystander', sleepOnceMs: 4000 })));
    await waitFor(
      async () => ((await tagged('rejection-bystander')).length > 0 ? true : undefined),
      'bystander running',
    );
    await q.sendMessage(b64(JSON.stringify({ tag: 'rejection-culprit', crash: 'rejection', sleepOnceMs: 2000 })));
    const [bystander, culprit] = await waitFor(
      async () => {
        const b = await tagged('rejection-bystander');
        const c = await tagged('rejection-culprit');
        return b.length >= 2 && c.length >= 2 ? [b, c] : undefined;
      },
      'both retried',
      20_000,
    );
    for (const runs of [bystander, culprit]) {
      expect(runs.map((r) => r.meta!.dequeueCount)).toEqual([1, 2]);
      expect(runs[0]!.pid).toBe(first);
      expect(runs[1]!.pid).not.toBe(first);
    }
    await waitFor(
      async () => ((await q.getProperties()).approximateMessagesCount === 0 ? true : undefined),
      'queue drained',
    );
    const out = host.output();
    expect(out).toContain('Worker uncaught exception');
    expect(out).toContain('fixture left this promise rejection unhandled');
    expect(out).toMatch(
      new RegExp(`worker process ${first} exited with code 1; \\d+ invocation\\(s\\) in flight failed; restarting it`),
    );
    expect(await workerPid()).not.toBe(first);
  });

  it('an uncaught exception kills the worker too: an HTTP request in flight gets an empty 500, the host stays up', async () => {
    const first = await workerPid();
    const hanging = fetch(`${host.url}/api/hang?ms=4000`);
    await waitFor(async () => ((await seen('hang')).some((h) => h.pid === first) ? true : undefined), 'hang running');
    await queues
      .getQueueClient(QUEUE)
      .sendMessage(b64(JSON.stringify({ tag: 'exception-culprit', crash: 'exception', sleepOnceMs: 1000 })));
    const res = await hanging;
    expect(res.status).toBe(500);
    expect(await res.text()).toBe('');
    const runs = await waitFor(async () => {
      const r = await tagged('exception-culprit');
      return r.length >= 2 ? r : undefined;
    }, 'culprit retried');
    expect(runs.map((r) => r.meta!.dequeueCount)).toEqual([1, 2]);
    expect(host.output()).toContain('fixture threw outside any invocation');
    expect((await fetch(`${host.url}/api/ping`)).status).toBe(200);
    expect(await workerPid()).not.toBe(first);
  });

  it('functionTimeout restarts the worker: the timed-out invocation fails at once, the others in it at their own timeout, then retry', async () => {
    const first = await workerPid();
    const hanging = fetch(`${host.url}/api/hang`); // sleeps 60 s; functionTimeout is 6 s
    await waitFor(async () => ((await seen('hang')).some((h) => h.pid === first) ? true : undefined), 'hang running');
    // A queue invocation that starts later in the same worker and is still running when the worker is killed.
    await new Promise((r) => setTimeout(r, 2500));
    await queues.getQueueClient(QUEUE).sendMessage(b64(JSON.stringify({ tag: 'orphan', sleepOnceMs: 5000 })));
    const res = await hanging;
    expect(res.status).toBe(500);
    const runs = await waitFor(
      async () => {
        const r = await tagged('orphan');
        return r.length >= 2 ? r : undefined;
      },
      'orphan retried',
      30_000,
    );
    expect(runs.map((r) => [r.meta!.dequeueCount, r.pid === first])).toEqual([
      [1, true],
      [2, false],
    ]);
    const out = host.output();
    expect(out).toContain('Timeout value of 00:00:06 was exceeded by function: Functions.hang');
    expect(out).toContain('A function timeout has occurred. Restarting worker process executing invocationId');
    // The orphan got no result from the killed worker: it failed when its own timeout expired, as in Azure.
    expect(out).toContain('Timeout value of 00:00:06 was exceeded by function: Functions.queueWorker');
    expect(out).toMatch(new RegExp(`worker process ${first} was killed by SIGKILL \\(timeout of invocation`));
    expect(await workerPid()).not.toBe(first);
  }, 60_000);

  it('never logs queue message bodies or HTTP request bodies', () => {
    const out = host.output();
    expect(out).not.toContain(QUEUE_SECRET);
    expect(out).not.toContain(HTTP_SECRET);
    expect(out).not.toContain('hello-out');
  });

  it('stops gracefully on SIGTERM', async () => {
    const code = await host.stop('SIGTERM');
    expect(code).toBe(0);
    expect(host.output()).toContain('SIGTERM: stopping');
    expect(host.output()).toMatch(/\[host\] stopped/);
  });
});

describe('local Functions host start-up', () => {
  let azurite: RunningAzurite;
  beforeAll(async () => {
    azurite = await startAzurite();
  });
  afterAll(async () => {
    await azurite?.stop();
  });

  const start = (args: string[], env: Record<string, string | undefined>) =>
    startHost({
      args: ['--main', 'functions/*.ts', '--port', '0', '--no-azurite', ...args],
      env: {
        AzureWebJobsStorage: azurite.connectionString,
        IMPORT_QUEUE: undefined,
        SYNC_RULES: undefined,
        SYNC_RULES_FILE: undefined,
        LOCAL_HOST_SETTING_DEFAULTS: undefined,
        ...env,
      },
    });

  // Azure/azure-webjobs-sdk NameResolverExtensions.cs: "'%X%' does not resolve to a value" stops the start.
  it('refuses a %SETTING% without a value, as Azure does (emulator contract); --setting-defaults takes lib/config.ts defaults instead', async () => {
    const refused = await start([], {}).then(
      async (h) => {
        await h.stop('SIGKILL');
        return 'started';
      },
      (err: Error) => err.message,
    );
    expect(refused).toContain("'%IMPORT_QUEUE%' does not resolve to a value");
    expect(refused).toContain('--setting-defaults');

    const host = await start(['--setting-defaults'], {});
    try {
      expect(host.output()).toContain('app setting IMPORT_QUEUE is not set; using its documented default');
      expect(host.output()).toContain("importWorker: queueTrigger 'imports'");
      expect(host.output()).toContain('queue lease 600s renewed at half');
      expect(host.output()).toContain('body cap 104857600 bytes');
    } finally {
      await host.stop('SIGTERM');
    }
  });
});
