/**
 * Source registries reached through a private endpoint, by an explicit binding (PRIVATE_SOURCE_REGISTRIES).
 *
 * With virtual network integration, a registry behind a private endpoint resolves to an address of the virtual
 * network (its login server `<name>.azurecr.io` and its data endpoint `<name>.<region>.data.azurecr.io`, through
 * the `privatelink.azurecr.io` zone: Microsoft Learn, "Connect privately to an Azure container registry using
 * Azure Private Link"). The address guard (./sources.ts) refuses such addresses unless an ALLOWED_SOURCES pattern
 * names the host. This module allows them for exactly the registries an operator binds by ARM resource ID, and
 * only for requests that name the registry by that resource ID (whose login server Resource Manager reported):
 *
 * - the binding lists resource IDs, never host patterns: nothing else becomes reachable privately;
 * - it covers the registry's login server and its regional data endpoints, nothing else;
 * - of the non-public addresses, only those a virtual network uses (RFC 1918 and the RFC 6598 shared space,
 *   which Azure virtual networks may use) are allowed: loopback, link-local (169.254.169.254, the instance
 *   metadata endpoint), 168.63.129.16 (the platform's own address) and the rest stay refused;
 * - a malformed entry is a configuration error, never ignored; an empty setting binds nothing.
 *
 * The template sets PRIVATE_SOURCE_REGISTRIES only when the app has virtual network integration
 * (infra/main.bicep: `sourceRegistries[].privateEndpoint` with `virtualNetworkSubnetId`).
 */
import { BlockList, isIP } from 'node:net';
import { AzureError } from '../azure/errors.js';
import { parseRegistryResourceId } from '../azure/arm.js';
import { ConfigError, type Config } from '../config.js';
import { normalizeRegistry } from '../oci/reference.js';
import {
  SourceNotAllowedError,
  checkSource,
  isNonPublicAddress,
  matchesPattern,
  splitHostPort,
  type Lookup,
} from './sources.js';

export const PRIVATE_SOURCE_SETTING = 'PRIVATE_SOURCE_REGISTRIES';

/**
 * Address space a virtual network (and so a private endpoint in it) may use: RFC 1918 and RFC 6598. Made on the first
 * address checked, as the lists of lib/policy/sources.ts are.
 */
let vnet: BlockList | undefined;
function vnetList(): BlockList {
  if (vnet) return vnet;
  vnet = new BlockList();
  for (const [net, prefix] of [
    ['10.0.0.0', 8],
    ['172.16.0.0', 12],
    ['192.168.0.0', 16],
    ['100.64.0.0', 10],
  ] as const)
    vnet.addSubnet(net, prefix, 'ipv4');
  return vnet;
}

/** True for an address a private endpoint can have: RFC 1918 or RFC 6598, also IPv4-mapped in IPv6. */
export function isPrivateEndpointAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return vnetList().check(bare, 'ipv4');
  if (family !== 6) return false;
  const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)?.[1];
  return mapped !== undefined && vnetList().check(mapped, 'ipv4');
}

/** Canonical (lower-case) resource IDs of the bound registries; throws ConfigError for a malformed entry. */
export function parsePrivateSources(list: readonly string[]): ReadonlySet<string> {
  const ids = new Set<string>();
  for (const entry of list) {
    try {
      ids.add(parseRegistryResourceId(entry).id.toLowerCase());
    } catch (err) {
      if (err instanceof AzureError) throw new ConfigError(PRIVATE_SOURCE_SETTING, err.message);
      throw err;
    }
  }
  return ids;
}

const parsed = new WeakMap<Config, ReadonlySet<string>>();

/** The bound registries of a configuration (parsed once per configuration). */
export function privateSourcesOf(config: Pick<Config, 'privateSourceRegistries'>): ReadonlySet<string> {
  let ids = parsed.get(config as Config);
  if (!ids) {
    ids = parsePrivateSources(config.privateSourceRegistries);
    parsed.set(config as Config, ids);
  }
  return ids;
}

/** Whether a request's registry resource ID is bound. */
export function isBound(config: Pick<Config, 'privateSourceRegistries'>, resourceId: string | undefined): boolean {
  if (!resourceId) return false;
  try {
    return privateSourcesOf(config).has(parseRegistryResourceId(resourceId).id.toLowerCase());
  } catch (err) {
    if (err instanceof AzureError) return false;
    throw err;
  }
}

/**
 * The hosts a bound registry may reach privately: its login server as Resource Manager reported it, and its
 * data endpoints `<name>.<region>.data.<domain>`. The login server must be `<name>.<domain>` of the resource ID's
 * registry name; anything else binds nothing.
 */
export function privateEndpointHosts(resourceId: string, loginServer: string): (host: string) => boolean {
  const name = parseRegistryResourceId(resourceId).name.toLowerCase();
  const login = splitHostPort(normalizeRegistry(loginServer)).host;
  if (!login.startsWith(`${name}.`)) return () => false;
  const domain = login.slice(name.length + 1);
  const dataEndpoint = new RegExp(`^${name}\\.[a-z0-9-]{1,63}\\.data\\.${domain.replace(/[.]/g, '\\.')}$`);
  return (host) => {
    const h = host
      .replace(/^\[|\]$/g, '')
      .toLowerCase()
      .replace(/\.$/, '');
    return h === login || dataEndpoint.test(h);
  };
}

/**
 * Resolves `host` once and returns its addresses when each is public or a private-endpoint address; throws
 * SourceNotAllowedError otherwise, and when the name does not resolve (fail closed).
 */
export async function vetPrivateEndpointAddresses(host: string, lookup: Lookup): Promise<string[]> {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  let addresses: string[];
  try {
    addresses = isIP(bare) ? [bare] : await lookup(bare);
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
  const bad = addresses.find((a) => isNonPublicAddress(a) && !isPrivateEndpointAddress(a));
  if (bad) {
    throw new SourceNotAllowedError(
      'PRIVATE_ADDRESS',
      `source host ${host} resolves to ${bad}, which is neither public nor a private-endpoint address ` +
        `(10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10); ${PRIVATE_SOURCE_SETTING} allows only those`,
    );
  }
  return addresses;
}

/**
 * The check of a source named by a bound resource ID (a request, and the worker's plan step): its login server
 * must match ALLOWED_SOURCES and resolve to public or private-endpoint addresses; a login server that is not
 * `<name>.<domain>` of the resource ID gets the usual check. Throws SourceNotAllowedError.
 */
export async function checkBoundSource(
  registry: string,
  resourceId: string,
  allowed: readonly string[],
  lookup: Lookup,
): Promise<void> {
  if (!privateEndpointHosts(resourceId, registry)(splitHostPort(normalizeRegistry(registry)).host)) {
    await checkSource(registry, allowed, lookup);
    return;
  }
  if (!allowed.some((p) => matchesPattern(registry, p))) {
    throw new SourceNotAllowedError(
      'SOURCE_NOT_ALLOWED',
      `source registry ${registry} is not in ALLOWED_SOURCES (${allowed.join(', ') || 'empty'})`,
    );
  }
  await vetPrivateEndpointAddresses(splitHostPort(registry).host, lookup);
}
