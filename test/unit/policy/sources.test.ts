/**
 * The SSRF guard: which addresses are non-public, and the connect-time check — one resolution, every
 * address vetted, the socket connected to the vetted address, a failed lookup failing closed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../../lib/oci/registry.js';
import {
  checkSource,
  guardedDispatcher,
  isNonPublicAddress,
  NON_PUBLIC_IPV4,
  NON_PUBLIC_IPV6,
  type Lookup,
} from '../../../lib/policy/sources.js';
import { scripted, type ScriptedPeer } from '../../support/scripted.js';

describe('non-public addresses', () => {
  it.each([
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '169.254.169.254',
    '168.63.129.16',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:a9fe:a9fe',
    '64:ff9b::a9fe:a9fe',
    '64:ff9b::8.8.8.8',
    '::127.0.0.1',
    '::a00:1',
    'ff02::1',
  ])('%s is non-public', (address) => expect(isNonPublicAddress(address)).toBe(true));

  it.each(['8.8.8.8', '203.0.113.10', '2606:4700:4700::1111', '::ffff:8.8.8.8', '168.63.129.17'])(
    '%s is public',
    (address) => {
      expect(isNonPublicAddress(address)).toBe(false);
    },
  );
});

/**
 * Every range the guard refuses, one row each, with why it is not the public internet (the IANA special-purpose
 * address registries, RFC 6890, and Azure's platform address). Each row checks the first and last address of the
 * range, the IPv4 ones also as IPv4-mapped IPv6, and the addresses just outside it (refused only when another row
 * covers them), with address arithmetic of this test's own: a range narrowed, widened or dropped in the code fails
 * its row, and the code's lists must be exactly these rows.
 */
const BLOCKED_V4: readonly [string, string][] = [
  ['0.0.0.0/8', '"this network" (RFC 791, RFC 1122)'],
  ['10.0.0.0/8', 'private use (RFC 1918)'],
  ['100.64.0.0/10', 'shared address space, carrier-grade NAT (RFC 6598)'],
  ['127.0.0.0/8', 'loopback (RFC 1122)'],
  [
    '168.63.129.16/32',
    'Azure\'s platform address: DNS, DHCP, health probes (Microsoft Learn, "What is IP address 168.63.129.16?")',
  ],
  ['169.254.0.0/16', 'link-local (RFC 3927): the instance metadata endpoint 169.254.169.254'],
  ['172.16.0.0/12', 'private use (RFC 1918)'],
  ['192.0.0.0/24', 'IETF protocol assignments (RFC 6890)'],
  ['192.168.0.0/16', 'private use (RFC 1918)'],
  ['198.18.0.0/15', 'benchmarking (RFC 2544)'],
  ['224.0.0.0/4', 'multicast (RFC 5771)'],
  ['240.0.0.0/4', 'reserved, and the limited broadcast 255.255.255.255 (RFC 1112, RFC 919)'],
];
const BLOCKED_V6: readonly [string, string][] = [
  ['::/96', 'unspecified ::, loopback ::1, deprecated IPv4-compatible (RFC 4291)'],
  ['64:ff9b::/96', 'NAT64 well-known prefix: reaches IPv4 addresses (RFC 6052)'],
  ['64:ff9b:1::/48', 'local-use NAT64 (RFC 8215)'],
  ['fc00::/7', 'unique local (RFC 4193)'],
  ['fe80::/10', 'link-local (RFC 4291)'],
  ['fec0::/10', 'site-local, deprecated (RFC 3879)'],
  ['ff00::/8', 'multicast (RFC 4291)'],
];

const v4ToInt = (a: string): bigint => a.split('.').reduce((n, part) => (n << 8n) + BigInt(part), 0n);
const intToV4 = (n: bigint): string => [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
function v6ToInt(a: string): bigint {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.reduce((n, g) => (n << 16n) + BigInt(`0x${g}`), 0n);
}
const intToV6 = (n: bigint): string =>
  Array.from({ length: 8 }, (_, i) => ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');

interface Family {
  readonly bits: bigint;
  readonly toInt: (a: string) => bigint;
  readonly toText: (n: bigint) => string;
  readonly rows: readonly [string, string][];
}
const V4: Family = { bits: 32n, toInt: v4ToInt, toText: intToV4, rows: BLOCKED_V4 };
const V6: Family = { bits: 128n, toInt: v6ToInt, toText: intToV6, rows: BLOCKED_V6 };

function bounds(f: Family, cidr: string): [bigint, bigint] {
  const [net, prefix] = cidr.split('/');
  const size = 1n << (f.bits - BigInt(prefix!));
  const first = f.toInt(net!);
  return [first, first + size - 1n];
}
const inTable = (f: Family, n: bigint): boolean =>
  f.rows.some(([cidr]) => {
    const [first, last] = bounds(f, cidr);
    return n >= first && n <= last;
  });

describe('the block list, range by range', () => {
  it('the code refuses exactly the ranges of this table', () => {
    expect(NON_PUBLIC_IPV4.map(([net, prefix]) => `${net}/${prefix}`)).toEqual(BLOCKED_V4.map(([cidr]) => cidr));
    expect(NON_PUBLIC_IPV6.map(([net, prefix]) => `${net}/${prefix}`)).toEqual(BLOCKED_V6.map(([cidr]) => cidr));
  });

  it.each([...BLOCKED_V4.map((r) => [...r, V4] as const), ...BLOCKED_V6.map((r) => [...r, V6] as const)])(
    '%s is refused: %s',
    (cidr, _why, f) => {
      const [first, last] = bounds(f, cidr);
      expect(isNonPublicAddress(f.toText(first)), `${f.toText(first)}, first of ${cidr}`).toBe(true);
      expect(isNonPublicAddress(f.toText(last)), `${f.toText(last)}, last of ${cidr}`).toBe(true);
      if (f === V4) {
        expect(isNonPublicAddress(`::ffff:${f.toText(first)}`), `IPv4-mapped first of ${cidr}`).toBe(true);
        expect(isNonPublicAddress(`::ffff:${f.toText(last)}`), `IPv4-mapped last of ${cidr}`).toBe(true);
      }
      for (const outside of [first - 1n, last + 1n].filter((n) => n >= 0n && n < 1n << f.bits)) {
        expect(isNonPublicAddress(f.toText(outside)), `${f.toText(outside)}, next to ${cidr}`).toBe(
          inTable(f, outside),
        );
      }
    },
  );
});

describe('checkSource (when a request is accepted)', () => {
  it('fails closed when the name does not resolve', async () => {
    const enotfound: Lookup = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    };
    await expect(checkSource('nowhere.test', ['*'], enotfound)).rejects.toMatchObject({
      code: 'SOURCE_UNRESOLVABLE',
      temporary: false,
    });
    const eai: Lookup = async () => {
      throw Object.assign(new Error('getaddrinfo EAI_AGAIN'), { code: 'EAI_AGAIN' });
    };
    await expect(checkSource('flaky.test', ['*'], eai)).rejects.toMatchObject({
      code: 'SOURCE_UNRESOLVABLE',
      temporary: true,
    });
  });

  it('refuses a name with any non-public address, unless a pattern names it', async () => {
    const mixed: Lookup = async () => ['203.0.113.10', '10.0.0.7'];
    await expect(checkSource('mixed.test', ['*'], mixed)).rejects.toMatchObject({ code: 'PRIVATE_ADDRESS' });
    await expect(checkSource('mixed.test', ['*', 'mixed.test'], mixed)).resolves.toBeUndefined();
    await expect(checkSource('other.test', ['*.example.com'], mixed)).rejects.toMatchObject({
      code: 'SOURCE_NOT_ALLOWED',
    });
  });
});

describe('guarded dispatcher (every connection of a source)', () => {
  let peer: ScriptedPeer | undefined;
  afterEach(async () => {
    await peer?.close();
    peer = undefined;
  });
  const client = (host: string, dispatcher: ReturnType<typeof guardedDispatcher>) =>
    new RegistryClient({
      registry: host,
      insecure: true,
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      dispatcher,
    });
  const port = () => peer!.host.split(':')[1];

  it('a name that resolves to loopback is refused before any byte is sent; named explicitly, it connects to the vetted address', async () => {
    peer = await scripted([{ req: { method: 'GET', path: '/v2/' }, res: { status: 200 } }]);
    const toLoopback: Lookup = async () => ['127.0.0.1'];
    await expect(client(`reg.test:${port()}`, guardedDispatcher(['*'], toLoopback)).ping()).rejects.toMatchObject({
      code: 'PRIVATE_ADDRESS',
      side: 'source',
    });
    expect(peer.seen).toHaveLength(0);
    await client(`reg.test:${port()}`, guardedDispatcher(['*', 'reg.test'], toLoopback)).ping();
    peer.verify();
  });

  it('DNS rebinding: a name public when the request was accepted and private at connect time is refused', async () => {
    peer = await scripted([]);
    let calls = 0;
    const rebinding: Lookup = async () => (++calls === 1 ? ['203.0.113.10'] : ['127.0.0.1']);
    await checkSource(`rebind.test:${port()}`, ['*'], rebinding);
    await expect(client(`rebind.test:${port()}`, guardedDispatcher(['*'], rebinding)).ping()).rejects.toMatchObject({
      code: 'PRIVATE_ADDRESS',
    });
    expect(peer.seen).toHaveLength(0);
  });

  it('a lookup that fails makes no connection (fail closed)', async () => {
    peer = await scripted([]);
    const failing: Lookup = async () => {
      throw Object.assign(new Error('SERVFAIL'), { code: 'ESERVFAIL' });
    };
    await expect(client(`broken.test:${port()}`, guardedDispatcher(['*'], failing)).ping()).rejects.toMatchObject({
      code: 'SOURCE_UNRESOLVABLE',
    });
    expect(peer.seen).toHaveLength(0);
  });

  it('an IP literal is vetted too (no lookup involved)', async () => {
    peer = await scripted([]);
    await expect(
      client(
        peer.host,
        guardedDispatcher(['*'], async () => ['203.0.113.10']),
      ).ping(),
    ).rejects.toMatchObject({ code: 'PRIVATE_ADDRESS' });
    expect(peer.seen).toHaveLength(0);
  });
});
