/**
 * Where an import may read from (SSRF guard). A function app that fetches any URL a caller names would
 * happily read the instance metadata endpoint (169.254.169.254), Azure's platform endpoint
 * (168.63.129.16) or an internal service; so:
 *
 * - a source host must match ALLOWED_SOURCES (`checkSource`, when a request is accepted: a clear 400);
 * - every connection the worker opens for a source — manifests, blobs, redirects to storage, token
 *   realms, tag-list pages — goes through `guardedDispatcher`, whose connector resolves the name once,
 *   checks every address, and connects to the checked address: no second resolution, so DNS rebinding
 *   between a check and the connection is closed; a lookup that fails fails closed (no connection);
 * - a loopback, private, link-local or otherwise non-public address is allowed only when an explicit
 *   ALLOWED_SOURCES pattern (anything but the bare `*`) names the host.
 */
import { BlockList, isIP } from 'node:net';
import { Agent, buildConnector } from 'undici';
import type { NamedCredential } from '../config.js';
import { OciImportError } from '../errors.js';
import { normalizeRegistry } from '../oci/reference.js';
import { MAX_HEADER_BYTES } from '../oci/transport.js';

/** The non-public IPv4 ranges (network, prefix length); the tests check every one of them. */
export const NON_PUBLIC_IPV4 = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['168.63.129.16', 32],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const;
/** The non-public IPv6 ranges. ::/96 holds the unspecified and loopback addresses and the deprecated IPv4-compatible
 * ones; 64:ff9b::/96 is NAT64. (IPv4-mapped addresses are checked as the IPv4 address they carry.) */
export const NON_PUBLIC_IPV6 = [
  ['::', 96],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const;
/**
 * The block lists, made on the first address checked: a process that never checks one (the CLI, which reads from
 * where its user says) does not pay for them (about 0.5 ms of its start-up, and two of Node.js's modules).
 */
let lists: { v4: BlockList; v6: BlockList; platform4: BlockList; platform6: BlockList } | undefined;
function blockLists(): NonNullable<typeof lists> {
  if (lists) return lists;
  const v4 = new BlockList();
  for (const [net, prefix] of NON_PUBLIC_IPV4) v4.addSubnet(net, prefix, 'ipv4');
  const v6 = new BlockList();
  for (const [net, prefix] of NON_PUBLIC_IPV6) v6.addSubnet(net, prefix, 'ipv6');
  // Link-local and platform endpoints: see isPlatformAddress.
  const platform4 = new BlockList();
  platform4.addSubnet('169.254.0.0', 16, 'ipv4');
  platform4.addAddress('168.63.129.16', 'ipv4');
  const platform6 = new BlockList();
  platform6.addSubnet('fe80::', 10, 'ipv6');
  platform6.addAddress('fd00:ec2::254', 'ipv6');
  lists = { v4, v6, platform4, platform6 };
  return lists;
}

/** True for loopback, private, link-local, CGNAT, platform, NAT64, multicast and unspecified addresses (v4, v6, v4-mapped v6). */
export function isNonPublicAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  const { v4, v6 } = blockLists();
  if (family === 4) return v4.check(bare, 'ipv4');
  if (family !== 6) return false;
  const mapped = mappedIpv4(bare);
  if (mapped) return v4.check(mapped, 'ipv4');
  return v6.check(bare, 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped IPv6 one (`::ffff:a.b.c.d` or `::ffff:7f00:1`). */
function mappedIpv4(address: string): string | undefined {
  const dotted =
    /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address) ?? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (dotted) return dotted[1];
  const hex = /^(?:0{0,4}:){0,5}:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (!hex) return undefined;
  const hi = parseInt(hex[1]!, 16);
  const lo = parseInt(hex[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/**
 * Link-local and platform endpoints — instance metadata (169.254.169.254 and all of 169.254.0.0/16, fe80::/10),
 * Azure's wire server (168.63.129.16), AWS's IPv6 metadata address (fd00:ec2::254): never a registry, refused even
 * when an ALLOWED_SOURCES pattern names the host (a wildcard or port-less pattern may name a host that resolves
 * there).
 */
export function isPlatformAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  const { platform4, platform6 } = blockLists();
  if (family === 4) return platform4.check(bare, 'ipv4');
  if (family !== 6) return false;
  const mapped = mappedIpv4(bare);
  return mapped ? platform4.check(mapped, 'ipv4') : platform6.check(bare, 'ipv6');
}

function refusePlatform(host: string, addresses: readonly string[]): readonly string[] {
  const bad = addresses.find(isPlatformAddress);
  if (bad) {
    throw new SourceNotAllowedError(
      'PRIVATE_ADDRESS',
      `source host ${host} is or resolves to the link-local or platform address ${bad}, which no ALLOWED_SOURCES pattern can allow`,
    );
  }
  return addresses;
}

/** Resolves a host name to every address it has. */
export type Lookup = (host: string) => Promise<string[]>;

/** The system's resolver (its module loaded on the first host name: a start-up with registry addresses skips it). */
export const systemLookup: Lookup = async (host) => {
  const { lookup } = await import('node:dns/promises');
  return (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
};

export type SourceRefusal = 'SOURCE_NOT_ALLOWED' | 'PRIVATE_ADDRESS' | 'SOURCE_UNRESOLVABLE';

export class SourceNotAllowedError extends OciImportError {
  override name = 'SourceNotAllowedError';
  constructor(code: SourceRefusal, message: string, temporary = false) {
    super(code, message, { temporary, side: 'source' });
  }
}

export function splitHostPort(hostPort: string): { host: string; port?: string } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(hostPort);
  if (v6) return { host: v6[1]!.toLowerCase(), port: v6[2] };
  const i = hostPort.lastIndexOf(':');
  if (i > 0 && hostPort.indexOf(':') === i)
    return { host: hostPort.slice(0, i).toLowerCase(), port: hostPort.slice(i + 1) };
  return { host: hostPort.toLowerCase() };
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

/** Whether an explicit pattern (not the bare `*`) names `hostPort`: then non-public addresses are fine. */
export function explicitlyAllowed(hostPort: string, allowed: readonly string[]): boolean {
  return allowed.some((p) => p.trim() !== '*' && matchesPattern(hostPort, p));
}

/**
 * Resolves `host` once and returns its addresses when every one may be connected to; throws
 * SourceNotAllowedError otherwise — and when the name does not resolve (fail closed).
 */
export async function vetAddresses(host: string, lookup: Lookup): Promise<string[]> {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  let addresses: string[];
  if (isIP(bare)) addresses = [bare];
  else {
    try {
      addresses = await lookup(bare);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      throw new SourceNotAllowedError(
        'SOURCE_UNRESOLVABLE',
        `source host ${host} could not be resolved (${code || (err as Error).message})`,
        code !== 'ENOTFOUND',
      );
    }
    if (addresses.length === 0)
      throw new SourceNotAllowedError('SOURCE_UNRESOLVABLE', `source host ${host} has no address`, true);
  }
  const bad = addresses.find(isNonPublicAddress);
  if (bad) {
    throw new SourceNotAllowedError(
      'PRIVATE_ADDRESS',
      `source host ${host} is or resolves to the non-public address ${bad}; list it explicitly in ALLOWED_SOURCES to allow it`,
    );
  }
  return addresses;
}

/**
 * Throws SourceNotAllowedError unless `registry` may be read from: it matches ALLOWED_SOURCES, and,
 * unless an explicit pattern names it, all its addresses are public and it resolves at all. The same
 * check runs again at every connection (guardedDispatcher); this one makes a bad request a clear 400.
 */
export async function checkSource(
  registry: string,
  allowed: readonly string[],
  lookup: Lookup = systemLookup,
): Promise<void> {
  if (!allowed.some((p) => matchesPattern(registry, p))) {
    throw new SourceNotAllowedError(
      'SOURCE_NOT_ALLOWED',
      `source registry ${registry} is not in ALLOWED_SOURCES (${allowed.join(', ') || 'empty'})`,
    );
  }
  const host = splitHostPort(registry).host;
  if (explicitlyAllowed(registry, allowed)) refusePlatform(host, await resolveOnly(host, lookup));
  else await vetAddresses(host, lookup);
}

/**
 * A vetting of its own for some hosts (./private-sources.ts: a bound registry's private endpoint), or undefined
 * for the usual one.
 */
export type HostVetting = (host: string) => ((host: string, lookup: Lookup) => Promise<string[]>) | undefined;

/**
 * An undici dispatcher for source registries: every new connection resolves its host once through
 * `lookup`, vets the addresses (`vetAddresses`) unless an explicit ALLOWED_SOURCES pattern names the host,
 * and connects to the vetted address — TLS still sends the host name (SNI) and verifies the certificate
 * against it.
 */
export function guardedDispatcher(
  allowed: readonly string[],
  lookup: Lookup = systemLookup,
  vetFor?: HostVetting,
): Agent {
  const base = buildConnector({});
  const connect: buildConnector.connector = (options, callback) => {
    const hostPort = options.port ? `${options.hostname}:${options.port}` : options.hostname;
    const own = vetFor?.(options.hostname);
    const addresses = own
      ? own(options.hostname, lookup)
      : connectAddresses(options.hostname, hostPort, allowed, lookup);
    addresses.then(
      // undici hands the connector IPv6 literals without brackets, as net.connect wants them
      (list) => base({ ...options, hostname: list[0]! }, callback),
      (err: Error) => callback(err, null),
    );
  };
  return new Agent({ keepAliveTimeout: 30_000, connections: 64, maxHeaderSize: MAX_HEADER_BYTES, connect });
}

/**
 * The addresses a connection to `hostname` (`hostPort` with its port) may use, resolved once: vetted unless an
 * explicit ALLOWED_SOURCES pattern names it, and never a link-local or platform address whatever names it.
 */
export async function connectAddresses(
  hostname: string,
  hostPort: string,
  allowed: readonly string[],
  lookup: Lookup,
): Promise<readonly string[]> {
  return explicitlyAllowed(hostPort, allowed)
    ? refusePlatform(hostname, await resolveOnly(hostname, lookup))
    : vetAddresses(hostname, lookup);
}

async function resolveOnly(host: string, lookup: Lookup): Promise<string[]> {
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare)) return [bare];
  try {
    const list = await lookup(bare);
    if (list.length) return list;
  } catch (err) {
    throw new SourceNotAllowedError(
      'SOURCE_UNRESOLVABLE',
      `source host ${host} could not be resolved (${(err as { code?: string }).code ?? (err as Error).message})`,
      true,
    );
  }
  throw new SourceNotAllowedError('SOURCE_UNRESOLVABLE', `source host ${host} has no address`, true);
}

/** Whether a named credential may be used for a source registry (REGISTRY_CREDENTIALS__<name>__REGISTRIES: the request check; the engine checks again). */
export function credentialAllows(credential: NamedCredential, registry: string): boolean {
  return credential.registries.some((p) => matchesPattern(registry, p));
}
