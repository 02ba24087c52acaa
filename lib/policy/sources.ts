/**
 * Which registries an import may read from (SSRF guard). A function app that fetches any URL a caller
 * names would happily read the instance metadata endpoint (169.254.169.254) or an internal service;
 * so a source host must match ALLOWED_SOURCES, and a host that is, or resolves to, a loopback,
 * private, link-local or otherwise non-public address is refused unless a pattern names it explicitly
 * (anything but the bare `*`).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { normalizeRegistry } from '../oci/reference.js';

const nonPublic = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) nonPublic.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) {
  nonPublic.addSubnet(net, prefix, 'ipv6');
}

/** True for loopback, private, link-local, CGNAT, multicast and unspecified addresses (v4, v6, v4-mapped v6). */
export function isNonPublicAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return nonPublic.check(mapped[1]!, 'ipv4');
  const family = isIP(address);
  if (family === 0) return false;
  return nonPublic.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export type Lookup = (host: string) => Promise<string[]>;

export const systemLookup: Lookup = async (host) => (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);

export class SourceNotAllowedError extends Error {
  override readonly name = 'SourceNotAllowedError';
  readonly temporary = false;
  constructor(readonly code: 'SOURCE_NOT_ALLOWED' | 'PRIVATE_ADDRESS', message: string) {
    super(message);
  }
}

function splitHostPort(hostPort: string): { host: string; port?: string } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(hostPort);
  if (v6) return { host: v6[1]!.toLowerCase(), port: v6[2] };
  const i = hostPort.lastIndexOf(':');
  if (i > 0 && hostPort.indexOf(':') === i) return { host: hostPort.slice(0, i).toLowerCase(), port: hostPort.slice(i + 1) };
  return { host: hostPort.toLowerCase() };
}

/**
 * The first non-public address `host` is or resolves to, if any. A name that does not resolve is not
 * refused here (the request would fail anyway).
 */
async function nonPublicAddressOf(host: string, lookup: Lookup): Promise<string | undefined> {
  if (host === 'localhost') return '127.0.0.1';
  if (isIP(host)) return isNonPublicAddress(host) ? host : undefined;
  try {
    return (await lookup(host)).find(isNonPublicAddress);
  } catch {
    return undefined;
  }
}

/** `pattern` is `*`, `host`, `host:port` or `*.domain[:port]`; a pattern without port matches any port. */
export function matchesPattern(registry: string, pattern: string): boolean {
  const want = splitHostPort(normalizeRegistry(pattern));
  const got = splitHostPort(normalizeRegistry(registry));
  if (want.host === '*') return true;
  if (want.port !== undefined && want.port !== got.port) return false;
  if (want.host.startsWith('*.')) return got.host.endsWith(want.host.slice(1));
  return want.host === got.host;
}

/**
 * Throws SourceNotAllowedError unless `registry` may be read from. DNS failures are not refusals here
 * (the copy would fail anyway), but every address a name resolves to must be public unless the host
 * is listed explicitly.
 */
export async function checkSource(registry: string, allowed: readonly string[], lookup: Lookup = systemLookup): Promise<void> {
  const matching = allowed.filter((p) => matchesPattern(registry, p));
  if (matching.length === 0) {
    throw new SourceNotAllowedError('SOURCE_NOT_ALLOWED',
      `source registry ${registry} is not in ALLOWED_SOURCES (${allowed.join(', ') || 'empty'})`);
  }
  if (matching.some((p) => p.trim() !== '*')) return;
  const bad = await nonPublicAddressOf(splitHostPort(registry).host, lookup);
  if (bad) {
    throw new SourceNotAllowedError('PRIVATE_ADDRESS',
      `source registry ${registry} is or resolves to the non-public address ${bad}; list it explicitly in ALLOWED_SOURCES to allow it`);
  }
}

/**
 * Throws SourceNotAllowedError when a source sends us to `url` (a redirect to storage, a token realm)
 * and its host is, or resolves to, a non-public address — unless an explicit ALLOWED_SOURCES pattern
 * (anything but the bare `*`) names the host. Storage and token hosts need not be listed otherwise:
 * nobody knows a CDN's names in advance.
 */
export async function checkSourceUrl(url: URL, allowed: readonly string[], lookup: Lookup = systemLookup): Promise<void> {
  const hostPort = url.host;
  if (allowed.some((p) => p.trim() !== '*' && matchesPattern(hostPort, p))) return;
  const bad = await nonPublicAddressOf(url.hostname.replace(/^\[|\]$/g, '').toLowerCase(), lookup);
  if (bad) {
    throw new SourceNotAllowedError('PRIVATE_ADDRESS',
      `the source registry sent us to ${url.protocol}//${hostPort}, which is or resolves to the non-public address ${bad}; list ${url.hostname} explicitly in ALLOWED_SOURCES to allow it`);
  }
}
