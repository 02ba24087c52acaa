/**
 * The SSRF guard: which addresses are non-public, and the connect-time check — one resolution, every
 * address vetted, the socket connected to the vetted address, a failed lookup failing closed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { checkSource, guardedDispatcher, isNonPublicAddress, type Lookup } from '../../../lib/policy/sources.js';
import { scripted, type ScriptedPeer } from '../../support/scripted.js';

describe('non-public addresses', () => {
  it.each([
    '127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '168.63.129.16', '100.64.0.1', '0.0.0.0',
    '224.0.0.1', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '64:ff9b::a9fe:a9fe',
    '64:ff9b::8.8.8.8', '::127.0.0.1', '::a00:1', 'ff02::1',
  ])('%s is non-public', (address) => expect(isNonPublicAddress(address)).toBe(true));

  it.each(['8.8.8.8', '203.0.113.10', '2606:4700:4700::1111', '::ffff:8.8.8.8', '168.63.129.17'])('%s is public', (address) => {
    expect(isNonPublicAddress(address)).toBe(false);
  });
});

describe('checkSource (when a request is accepted)', () => {
  it('fails closed when the name does not resolve', async () => {
    const enotfound: Lookup = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    };
    await expect(checkSource('nowhere.test', ['*'], enotfound)).rejects.toMatchObject({ code: 'SOURCE_UNRESOLVABLE', temporary: false });
    const eai: Lookup = async () => {
      throw Object.assign(new Error('getaddrinfo EAI_AGAIN'), { code: 'EAI_AGAIN' });
    };
    await expect(checkSource('flaky.test', ['*'], eai)).rejects.toMatchObject({ code: 'SOURCE_UNRESOLVABLE', temporary: true });
  });

  it('refuses a name with any non-public address, unless a pattern names it', async () => {
    const mixed: Lookup = async () => ['203.0.113.10', '10.0.0.7'];
    await expect(checkSource('mixed.test', ['*'], mixed)).rejects.toMatchObject({ code: 'PRIVATE_ADDRESS' });
    await expect(checkSource('mixed.test', ['*', 'mixed.test'], mixed)).resolves.toBeUndefined();
    await expect(checkSource('other.test', ['*.example.com'], mixed)).rejects.toMatchObject({ code: 'SOURCE_NOT_ALLOWED' });
  });
});

describe('guarded dispatcher (every connection of a source)', () => {
  let peer: ScriptedPeer | undefined;
  afterEach(async () => {
    await peer?.close();
    peer = undefined;
  });
  const client = (host: string, dispatcher: ReturnType<typeof guardedDispatcher>) =>
    new RegistryClient({ registry: host, insecure: true, retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 }, dispatcher });
  const port = () => peer!.host.split(':')[1];

  it('a name that resolves to loopback is refused before any byte is sent; named explicitly, it connects to the vetted address', async () => {
    peer = await scripted([{ req: { method: 'GET', path: '/v2/' }, res: { status: 200 } }]);
    const toLoopback: Lookup = async () => ['127.0.0.1'];
    await expect(client(`reg.test:${port()}`, guardedDispatcher(['*'], toLoopback)).ping()).rejects.toMatchObject({ code: 'PRIVATE_ADDRESS', side: 'source' });
    expect(peer.seen).toHaveLength(0);
    await client(`reg.test:${port()}`, guardedDispatcher(['*', 'reg.test'], toLoopback)).ping();
    peer.verify();
  });

  it('DNS rebinding: a name public when the request was accepted and private at connect time is refused', async () => {
    peer = await scripted([]);
    let calls = 0;
    const rebinding: Lookup = async () => (++calls === 1 ? ['203.0.113.10'] : ['127.0.0.1']);
    await checkSource(`rebind.test:${port()}`, ['*'], rebinding);
    await expect(client(`rebind.test:${port()}`, guardedDispatcher(['*'], rebinding)).ping()).rejects.toMatchObject({ code: 'PRIVATE_ADDRESS' });
    expect(peer.seen).toHaveLength(0);
  });

  it('a lookup that fails makes no connection (fail closed)', async () => {
    peer = await scripted([]);
    const failing: Lookup = async () => {
      throw Object.assign(new Error('SERVFAIL'), { code: 'ESERVFAIL' });
    };
    await expect(client(`broken.test:${port()}`, guardedDispatcher(['*'], failing)).ping()).rejects.toMatchObject({ code: 'SOURCE_UNRESOLVABLE' });
    expect(peer.seen).toHaveLength(0);
  });

  it('an IP literal is vetted too (no lookup involved)', async () => {
    peer = await scripted([]);
    await expect(client(peer.host, guardedDispatcher(['*'], async () => ['203.0.113.10'])).ping()).rejects.toMatchObject({ code: 'PRIVATE_ADDRESS' });
    expect(peer.seen).toHaveLength(0);
  });
});
