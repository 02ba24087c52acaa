/**
 * The Entra ID sign-in path of a source (issue 22, finding 2): a password-only credential (an Entra ID token) makes
 * the worker probe the registry's `GET /v2/` and post the token to its `/oauth2/exchange`. Those connections go
 * through the same address-guarded dispatcher and deadlines as every other source request: a name that resolves
 * public for the checks and to loopback afterwards gets PRIVATE_ADDRESS with no connection at all, and a registry
 * that never answers ends the step within its budget and a request timeout, as TIMEOUT.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { azureSettings } from '../../../lib/azure/clients.js';
import { resolveRegistry } from '../../../lib/azure/arm.js';
import { loadConfig } from '../../../lib/config.js';
import { startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';
import { testService } from '../../support/service.js';

const KEY = Buffer.alloc(32, 9).toString('base64');
/** A token as a caller would hand one in (never sent anywhere real). */
const ENTRA_TOKEN = 'eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ0ZW5hbnQifQ.sig';

/** A TCP listener that counts connections and never answers (holding each one open). */
async function silentListener(
  host = '127.0.0.1',
): Promise<{ port: number; connections: () => number; received: () => string; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  let received = '';
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    socket.on('data', (b: Buffer) => {
      received += b.toString('latin1');
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => sockets.length,
    received: () => received,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('the Entra ID sign-in of a source goes through the guard and the deadlines', () => {
  const closers: (() => Promise<void>)[] = [];
  let dst: FakeRegistry | undefined;
  afterEach(async () => {
    await Promise.all([...closers.splice(0).map((c) => c()), dst?.close()]);
  });

  it('a name that resolves public for the checks and to loopback afterwards gets PRIVATE_ADDRESS with zero connections at the loopback listener', async () => {
    const internal = await silentListener();
    closers.push(internal.close);
    dst = await startFakeRegistry();
    const source = `localhost:${internal.port}`;
    const answers: string[] = [];
    // the request check and the plan step's check see a public address; every later resolution, loopback
    const lookup = async (host: string): Promise<string[]> => {
      answers.push(host);
      return answers.length <= 2 ? ['203.0.113.10'] : ['127.0.0.1'];
    };
    const t = testService(
      {
        TARGET_REGISTRY: dst.host,
        INSECURE_REGISTRIES: `${source},${dst.host}`,
        ALLOWED_SOURCES: '*',
        CREDENTIAL_KEY: KEY,
        STEP_BUDGET_SECONDS: '1',
      },
      { lookup, timeouts: { idleMs: 1000, minBytesPerSecond: 1024, rateWindowMs: 30_000 }, stepMarginMs: 1000 },
    );
    const job = await t.service.submit({ source: `${source}/team/app:1`, password: ENTRA_TOKEN }, 'http');
    await t.service.handleMessage(t.queue.drain()[0]!, t.meta()).catch(() => undefined);
    expect(await t.service.status(job.id)).toMatchObject({ status: 'failed', error: { code: 'PRIVATE_ADDRESS' } });
    expect(answers.length).toBeGreaterThanOrEqual(3); // the sign-in's connection asked the guard, which resolved again
    expect(internal.connections()).toBe(0);
    expect(internal.received()).not.toContain(ENTRA_TOKEN);
  });

  it('a /v2/ that never answers ends the plan step within its budget plus a request timeout, as TIMEOUT', async () => {
    const silent = await silentListener();
    closers.push(silent.close);
    dst = await startFakeRegistry();
    const source = `127.0.0.1:${silent.port}`;
    const t = testService(
      {
        TARGET_REGISTRY: dst.host,
        INSECURE_REGISTRIES: `${source},${dst.host}`,
        ALLOWED_SOURCES: source,
        CREDENTIAL_KEY: KEY,
        STEP_BUDGET_SECONDS: '1',
      },
      { timeouts: { idleMs: 1000, minBytesPerSecond: 1024, rateWindowMs: 30_000 }, stepMarginMs: 1000 },
    );
    const job = await t.service.submit({ source: `${source}/team/app:1`, password: ENTRA_TOKEN }, 'http');
    const plan = t.queue.drain()[0]!;
    const started = Date.now();
    // the last delivery: the step fails the job itself instead of leaving it to the host's timeout
    const thrown = await t.service.handleMessage(plan, t.meta(3)).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(thrown).toMatchObject({ code: 'TIMEOUT' });
    process.stdout.write(
      `[a /v2/ that never answers] the plan step ended after ${elapsed} ms (budget 1 s + request timeout 1 s)\n`,
    );
    expect(elapsed).toBeLessThan(2000 + 750);
    expect(await t.service.status(job.id)).toMatchObject({ status: 'failed', error: { code: 'TIMEOUT' } });
    expect(silent.connections()).toBeGreaterThanOrEqual(1);
    expect(silent.received()).toMatch(/^GET \/v2\/ HTTP\/1\.1/);
  });

  it('the Resource Manager look-up of a registry given by resource ID answers within the request timeout (REQUEST_TIMEOUT_SECONDS)', async () => {
    const silent = await silentListener();
    closers.push(silent.close);
    const config = loadConfig({ REQUEST_TIMEOUT_SECONDS: '1', ARM_ENDPOINT: `http://127.0.0.1:${silent.port}` });
    const settings = azureSettings(config);
    expect(settings.http?.timeouts?.idleMs).toBe(1000);
    const started = Date.now();
    const err = await resolveRegistry(
      '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/srcregistry',
      {
        credential: { getToken: async () => ({ token: 'arm-token', expiresOnTimestamp: Date.now() + 3_600_000 }) },
        identity: 'a test identity',
        armEndpoint: config.armEndpoint,
        http: { ...settings.http, retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 10 } },
      },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TIMEOUT' });
    // two attempts of at most the request timeout each (undici's timers tick coarsely: up to a second late)
    expect(Date.now() - started).toBeLessThan(2 * (1000 + 1000) + 500);
  });
});
