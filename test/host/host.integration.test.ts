/**
 * The local Functions host as a separate process, with fixture function modules (test/host/fixtures)
 * registered through the real @azure/functions library, against an in-memory Azurite.
 */
import { request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';
import { startHost, waitFor, type HostProcess } from './host-process.js';

interface Seen {
  fn: string;
  payload: unknown;
  meta?: Record<string, unknown>;
  at: string;
}

const suffix = randomBytes(3).toString('hex');
const QUEUE = `fx-work-${suffix}`;
const FAIL_QUEUE = `fx-fail-${suffix}`;
const OUT_QUEUE = `fx-out-${suffix}`;
const QUEUE_SECRET = `queue-secret-${suffix}`;
const HTTP_SECRET = `http-secret-${suffix}`;

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

describe('local Functions host (process + Azurite)', () => {
  let azurite: RunningAzurite;
  let host: HostProcess;
  let queues: QueueServiceClient;

  const seen = async (fn: string): Promise<Seen[]> => {
    const res = await fetch(`${host.url}/api/seen/${fn}`);
    expect(res.status).toBe(200);
    return (await res.json()) as Seen[];
  };

  beforeAll(async () => {
    azurite = await startAzurite();
    queues = QueueServiceClient.fromConnectionString(azurite.connectionString);
    host = await startHost({
      args: [
        '--main', 'test/host/fixtures/*.ts',
        '--host-json', 'test/host/fixtures/host.json',
        '--local-settings', 'test/host/fixtures/local.settings.fixture.json',
        '--port', '0',
      ],
      env: {
        AzureWebJobsStorage: azurite.connectionString,
        FIXTURE_QUEUE: QUEUE,
        FIXTURE_FAIL_QUEUE: FAIL_QUEUE,
        FIXTURE_OUT_QUEUE: OUT_QUEUE,
        FIXTURE_TIMER_SCHEDULE: undefined,
        LOCAL_HOST_QUEUE_LEASE_SECONDS: '2',
        LOCAL_HOST_SHUTDOWN_GRACE_SECONDS: '3',
      },
    });
  });

  afterAll(async () => {
    await host?.stop('SIGKILL');
    await azurite?.stop();
  });

  it('prints a banner with the functions, their URLs, queues and schedules', () => {
    const out = host.output();
    expect(out).toContain(`echo: [GET,POST] ${host.url}/api/items/{id}/{sub?}`);
    expect(out).toContain(`ping: [GET] ${host.url}/api/ping`);
    expect(out).toContain(`queueWorker: queueTrigger '${QUEUE}' (poison '${QUEUE}-poison')`);
    expect(out).toMatch(/tick: timerTrigger \* \* \* \* \* \* \(every second, UTC\), runOnStartup/);
    expect(out).toContain(`queue http://127.0.0.1:${azurite.queuePort}/devstoreaccount1`);
    expect(out).not.toContain('AccountKey');
    expect(out).not.toContain('Eby8vdM02');
  });

  it('routes HTTP requests with route params, query, JSON body, headers and cookies', async () => {
    const res = await fetch(`${host.url}/api/items/42/extra?q=hi`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hello: 'world', password: HTTP_SECRET }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-fixture')).toBe('echo');
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('set-cookie')).toBe('fixture=yes; Path=/; HttpOnly');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      id: '42', sub: 'extra', method: 'POST', q: 'hi', contentType: 'application/json',
      body: { hello: 'world', password: HTTP_SECRET },
      url: `${host.url}/api/items/42/extra?q=hi`,
      realRequest: true, functionName: 'echo', triggerMetadata: null,
    });
    expect(body.invocationId).toMatch(/^[0-9a-f-]{36}$/);

    const optional = (await (await fetch(`${host.url}/api/ITEMS/7`)).json()) as Record<string, unknown>;
    expect(optional).toMatchObject({ id: '7', sub: null, method: 'GET', body: null });
  });

  it('default route, hooks, 404, 405, 500 without details, 413 over the host cap', async () => {
    const ping = await fetch(`${host.url}/api/ping`);
    expect(ping.status).toBe(200);
    expect(await ping.text()).toBe('pong (post-hook)');

    expect((await fetch(`${host.url}/api/nothing-here`)).status).toBe(404);
    expect((await fetch(`${host.url}/elsewhere`)).status).toBe(404);

    const put = await fetch(`${host.url}/api/items/1`, { method: 'PUT', body: 'x' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, POST');

    const boom = await fetch(`${host.url}/api/boom`);
    expect(boom.status).toBe(500);
    const boomBody = await boom.text();
    expect(boomBody).toBe('');
    expect(host.output()).toContain('kaboom with secret-xyz-123'); // logged by the host, not returned

    const status = await new Promise<number>((resolve, reject) => {
      const big = Buffer.alloc(1024 * 1024 + 10, 0x61);
      const req = httpRequest(`${host.url}/api/items/1`, { method: 'POST', headers: { 'content-length': String(big.length) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', (err) => reject(err));
      req.end(big);
    });
    expect(status).toBe(413);

    const health = await fetch(`${host.url}/admin/host/status`);
    expect(await health.json()).toMatchObject({ state: 'Running' });
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
    const byPayload = (p: unknown): Seen | undefined => got.find((s) => JSON.stringify(s.payload) === JSON.stringify(p));
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
    await waitFor(async () => ((await q.getProperties()).approximateMessagesCount === 0 ? true : undefined), 'queue to be empty');
    expect(host.output()).toMatch(new RegExp(`Executed 'Functions\\.queueWorker' \\(Succeeded, Id=[0-9a-f-]+, Duration=\\d+ms\\) queue=${QUEUE} messageId=${json!.meta!.id as string} dequeueCount=1`));
  });

  it('keeps a long-running message invisible by renewing its lease (lease 2 s, handler 3.5 s)', async () => {
    const q = queues.getQueueClient(QUEUE);
    await q.sendMessage(b64(JSON.stringify({ sleepMs: 3500, tag: 'slow' })));
    await waitFor(async () => ((await seen('queueWorker')).some((s) => (s.payload as { tag?: string }).tag === 'slow') ? true : undefined), 'slow invocation');
    await waitFor(async () => ((await q.getProperties()).approximateMessagesCount === 0 ? true : undefined), 'slow message deleted', 8000);
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
      return peeked.peekedMessageItems.length >= 2 ? peeked.peekedMessageItems.map((m) => unb64(m.messageText)) : undefined;
    }, 'two forwarded messages');
    expect(texts.sort()).toEqual(['hello-out', '{"forwarded":true}']);
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
    expect(attempts.map((a) => a.meta!.dequeueCount)).toEqual([1, 2]); // fixture host.json: maxDequeueCount 2
    expect((await queues.getQueueClient(FAIL_QUEUE).getProperties()).approximateMessagesCount).toBe(0);
    expect(host.output()).toContain(`reached MaxDequeueCount of 2, moved to '${FAIL_QUEUE}-poison'`);
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
    const ticks = await waitFor(async () => {
      const s = await seen('tick');
      return s.length >= 3 ? s : undefined;
    }, 'three timer ticks', 5000);
    for (const t of ticks) {
      expect(t.payload).toMatchObject({ isPastDue: false, schedule: { adjustForDST: false } });
      expect((t.payload as { scheduleStatus: { next: string } }).scheduleStatus.next).toMatch(/Z$/);
    }
    expect(host.output()).toContain("Executed 'Functions.tick' (Succeeded");
    expect(host.output()).toContain('reason=runOnStartup');
  });

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
