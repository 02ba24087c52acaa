/**
 * Configuration of the local host: `local.settings.json` (Values become environment variables; the real
 * environment wins), `host.json` (queue extension options, functionTimeout, HTTP route prefix, log level),
 * `%SETTING%` binding expressions and storage connection strings.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseTimeSpan } from './ncrontab.js';

export class HostConfigError extends Error {
  override readonly name = 'HostConfigError';
}

export type Env = Record<string, string | undefined>;

// ---------------------------------------------------------------------------------------------
// local.settings.json
// ---------------------------------------------------------------------------------------------

export interface LocalSettings {
  /** Absolute path read, or undefined when no file exists. */
  readonly path?: string;
  readonly values: Readonly<Record<string, string>>;
  /** `Host.LocalHttpPort`, honoured like Core Tools does. */
  readonly localHttpPort?: number;
}

export function readLocalSettings(path: string): LocalSettings {
  if (!existsSync(path)) return { values: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new HostConfigError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null) throw new HostConfigError(`${path}: expected a JSON object`);
  const obj = parsed as Record<string, unknown>;
  if (obj.IsEncrypted === true) {
    throw new HostConfigError(`${path}: encrypted settings (IsEncrypted: true) are not supported by the local host`);
  }
  const values: Record<string, string> = {};
  const rawValues = obj.Values;
  if (rawValues !== undefined) {
    if (typeof rawValues !== 'object' || rawValues === null)
      throw new HostConfigError(`${path}: "Values" must be an object`);
    for (const [key, value] of Object.entries(rawValues as Record<string, unknown>)) {
      if (value === null || value === undefined) continue;
      if (typeof value === 'object') throw new HostConfigError(`${path}: Values.${key} must be a string`);
      values[key] = String(value);
    }
  }
  let localHttpPort: number | undefined;
  const host = obj.Host as Record<string, unknown> | undefined;
  if (host && host.LocalHttpPort !== undefined) {
    localHttpPort = Number(host.LocalHttpPort);
    if (!Number.isInteger(localHttpPort) || localHttpPort < 0 || localHttpPort > 65535) {
      throw new HostConfigError(`${path}: Host.LocalHttpPort must be a port number`);
    }
  }
  return { path, values, localHttpPort };
}

/** Copies Values into `env` where `env` has no value yet (the environment wins). Returns the keys applied. */
export function applyLocalSettings(settings: LocalSettings, env: Env): string[] {
  const applied: string[] = [];
  for (const [key, value] of Object.entries(settings.values)) {
    if (env[key] === undefined) {
      env[key] = value;
      applied.push(key);
    }
  }
  return applied;
}

// ---------------------------------------------------------------------------------------------
// host.json
// ---------------------------------------------------------------------------------------------

export type MessageEncoding = 'base64' | 'none';

export interface QueueOptions {
  /** Messages fetched per poll (1–32). Default 16. */
  readonly batchSize: number;
  /** Fetch the next batch when this many or fewer are still running. Default batchSize / 2. */
  readonly newBatchThreshold: number;
  /** Attempts before a message goes to `<queue>-poison`. Default 5. */
  readonly maxDequeueCount: number;
  /** Delay before a failed message is visible again, ms. Default 0. */
  readonly visibilityTimeoutMs: number;
  /** Longest wait between polls of an empty queue, ms. Default 2 s locally (1 min in Azure). */
  readonly maxPollingIntervalMs: number;
  readonly messageEncoding: MessageEncoding;
}

export type HostLogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none';

export interface HostJson {
  readonly path?: string;
  readonly queues: QueueOptions;
  /** host.json functionTimeout in ms (default 30 min, as Flex Consumption); null = unbounded (-1). */
  readonly functionTimeoutMs: number | null;
  /** extensions.http.routePrefix, default "api". */
  readonly routePrefix: string;
  /** logging.logLevel.default, mapped to the host's levels. */
  readonly logLevel: HostLogLevel;
}

export const DEFAULT_QUEUE_OPTIONS: QueueOptions = {
  batchSize: 16,
  newBatchThreshold: 8,
  maxDequeueCount: 5,
  visibilityTimeoutMs: 0,
  maxPollingIntervalMs: 2000,
  messageEncoding: 'base64',
};

const DEFAULT_FUNCTION_TIMEOUT_MS = 30 * 60 * 1000;

function num(path: string, key: string, value: unknown, min: number, max: number): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new HostConfigError(
      `${path}: ${key} must be an integer between ${min} and ${max} (got ${JSON.stringify(value)})`,
    );
  }
  return n;
}

function span(path: string, key: string, value: unknown): number {
  if (typeof value !== 'string')
    throw new HostConfigError(`${path}: ${key} must be a TimeSpan string such as "00:00:10"`);
  try {
    return parseTimeSpan(value);
  } catch (err) {
    throw new HostConfigError(`${path}: ${key}: ${(err as Error).message}`);
  }
}

function mapLogLevel(value: unknown): HostLogLevel {
  switch (String(value ?? 'Information').toLowerCase()) {
    case 'trace':
      return 'trace';
    case 'debug':
      return 'debug';
    case 'warning':
      return 'warning';
    case 'error':
      return 'error';
    case 'critical':
      return 'critical';
    case 'none':
      return 'none';
    default:
      return 'information';
  }
}

export function parseHostJson(raw: unknown, path = 'host.json'): HostJson {
  if (typeof raw !== 'object' || raw === null) throw new HostConfigError(`${path}: expected a JSON object`);
  const root = raw as Record<string, unknown>;
  const extensions = (root.extensions ?? {}) as Record<string, unknown>;
  const q = (extensions.queues ?? {}) as Record<string, unknown>;

  const batchSize =
    q.batchSize === undefined
      ? DEFAULT_QUEUE_OPTIONS.batchSize
      : num(path, 'extensions.queues.batchSize', q.batchSize, 1, 32);
  const newBatchThreshold =
    q.newBatchThreshold === undefined
      ? Math.floor(batchSize / 2)
      : num(path, 'extensions.queues.newBatchThreshold', q.newBatchThreshold, 0, 1000);
  const maxDequeueCount =
    q.maxDequeueCount === undefined
      ? DEFAULT_QUEUE_OPTIONS.maxDequeueCount
      : num(path, 'extensions.queues.maxDequeueCount', q.maxDequeueCount, 1, 1_000_000);
  const visibilityTimeoutMs =
    q.visibilityTimeout === undefined
      ? DEFAULT_QUEUE_OPTIONS.visibilityTimeoutMs
      : span(path, 'extensions.queues.visibilityTimeout', q.visibilityTimeout);
  if (visibilityTimeoutMs > 7 * 24 * 3600 * 1000)
    throw new HostConfigError(`${path}: extensions.queues.visibilityTimeout must be at most 7 days`);
  const maxPollingIntervalMs =
    q.maxPollingInterval === undefined
      ? DEFAULT_QUEUE_OPTIONS.maxPollingIntervalMs
      : span(path, 'extensions.queues.maxPollingInterval', q.maxPollingInterval);
  if (maxPollingIntervalMs < 100)
    throw new HostConfigError(`${path}: extensions.queues.maxPollingInterval must be at least 100 ms`);
  const encodingRaw = String(q.messageEncoding ?? 'base64').toLowerCase();
  if (encodingRaw !== 'base64' && encodingRaw !== 'none') {
    throw new HostConfigError(`${path}: extensions.queues.messageEncoding must be "base64" or "none"`);
  }

  let functionTimeoutMs: number | null = DEFAULT_FUNCTION_TIMEOUT_MS;
  if (root.functionTimeout !== undefined && root.functionTimeout !== null) {
    functionTimeoutMs =
      root.functionTimeout === '-1' || root.functionTimeout === -1
        ? null
        : span(path, 'functionTimeout', root.functionTimeout);
  }

  const http = (extensions.http ?? {}) as Record<string, unknown>;
  const routePrefix = http.routePrefix === undefined ? 'api' : String(http.routePrefix).replace(/^\/+|\/+$/g, '');

  const logging = (root.logging ?? {}) as Record<string, unknown>;
  const logLevel = mapLogLevel(((logging.logLevel ?? {}) as Record<string, unknown>).default);

  return {
    path,
    queues: {
      batchSize,
      newBatchThreshold,
      maxDequeueCount,
      visibilityTimeoutMs,
      maxPollingIntervalMs,
      messageEncoding: encodingRaw,
    },
    functionTimeoutMs,
    routePrefix,
    logLevel,
  };
}

/** Prefix of app settings that override host.json values (`AzureFunctionsJobHost__path__to__key`). */
export const HOST_JSON_OVERRIDE_PREFIX = 'AzureFunctionsJobHost__';

/**
 * Applies app settings `AzureFunctionsJobHost__<path>` (path segments joined by `__`) over host.json,
 * as the Functions host does ("Override host.json values",
 * https://learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-values): the host
 * reads host.json and then the environment into one .NET configuration, whose keys are case-insensitive.
 * Returns the new object and the overridden paths (for the banner). `raw` is not changed.
 */
export function applyHostJsonOverrides(
  raw: unknown,
  env: Env,
): { json: Record<string, unknown>; overridden: string[] } {
  const clone = (v: unknown): unknown =>
    typeof v === 'object' && v !== null ? (JSON.parse(JSON.stringify(v)) as unknown) : v;
  const json = (typeof raw === 'object' && raw !== null ? clone(raw) : {}) as Record<string, unknown>;
  const overridden: string[] = [];
  const prefix = HOST_JSON_OVERRIDE_PREFIX.toLowerCase();
  for (const [key, value] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (value === undefined || !key.toLowerCase().startsWith(prefix)) continue;
    const path = key
      .slice(prefix.length)
      .split('__')
      .filter((p) => p !== '');
    if (path.length === 0) continue;
    let node = json;
    const used: string[] = [];
    for (let i = 0; i < path.length; i++) {
      const wanted = path[i]!.toLowerCase();
      const existing = Object.keys(node).find((k) => k.toLowerCase() === wanted) ?? path[i]!;
      used.push(existing);
      if (i === path.length - 1) {
        node[existing] = value;
      } else {
        const child = node[existing];
        if (typeof child !== 'object' || child === null || Array.isArray(child)) node[existing] = {};
        node = node[existing] as Record<string, unknown>;
      }
    }
    overridden.push(used.join('.'));
  }
  return { json, overridden };
}

export function readHostJson(path: string, env: Env = {}): HostJson & { readonly overridden: readonly string[] } {
  if (!existsSync(path)) throw new HostConfigError(`${path} not found (the function app root needs a host.json)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new HostConfigError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  const { json, overridden } = applyHostJsonOverrides(raw, env);
  return { ...parseHostJson(json, path), overridden };
}

// ---------------------------------------------------------------------------------------------
// %SETTING% binding expressions
// ---------------------------------------------------------------------------------------------

/**
 * Replaces every `%NAME%` with the app setting NAME. `fallback(name)` may supply a documented default;
 * otherwise a missing setting is an error, as in Azure ("'%X%' does not resolve to a value").
 */
export function resolveSettingRefs(
  text: string,
  env: Env,
  where: string,
  fallback?: (name: string) => string | undefined,
): { value: string; defaulted: string[] } {
  const defaulted: string[] = [];
  const value = text.replace(/%([^%\s]+)%/g, (_m, name: string) => {
    const v = env[name];
    if (v !== undefined) return v;
    const d = fallback?.(name);
    if (d !== undefined) {
      defaulted.push(name);
      return d;
    }
    throw new HostConfigError(
      `${where}: '%${name}%' does not resolve to a value — set the app setting ${name} (environment or local.settings.json Values)`,
    );
  });
  return { value, defaulted };
}

// ---------------------------------------------------------------------------------------------
// Storage connections
// ---------------------------------------------------------------------------------------------

/** Azurite's well-known development account (public, documented; not a secret). */
export const DEV_ACCOUNT = 'devstoreaccount1';
export const DEV_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
export const DEV_PORTS = { blob: 10000, queue: 10001, table: 10002 } as const;

export function devConnectionString(
  host = '127.0.0.1',
  ports: { blob: number; queue: number; table: number } = DEV_PORTS,
): string {
  return (
    [
      'DefaultEndpointsProtocol=http',
      `AccountName=${DEV_ACCOUNT}`,
      `AccountKey=${DEV_ACCOUNT_KEY}`,
      `BlobEndpoint=http://${host}:${ports.blob}/${DEV_ACCOUNT}`,
      `QueueEndpoint=http://${host}:${ports.queue}/${DEV_ACCOUNT}`,
      `TableEndpoint=http://${host}:${ports.table}/${DEV_ACCOUNT}`,
    ].join(';') + ';'
  );
}

export function parseConnectionString(cs: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of cs.split(';')) {
    const trimmed = part.trim();
    if (!trimmed) continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0)
      throw new HostConfigError('storage connection string is malformed (expected key=value pairs separated by ";")');
    out[trimmed.slice(0, eq).trim().toLowerCase()] = trimmed.slice(eq + 1).trim();
  }
  return out;
}

export type StorageConnection =
  | {
      readonly kind: 'connectionString';
      /** Setting the connection came from (for messages). */
      readonly setting: string;
      /** A full connection string (UseDevelopmentStorage=true expanded). Holds the key: never log it. */
      readonly connectionString: string;
      readonly queueEndpoint: string;
      readonly blobEndpoint?: string;
      readonly tableEndpoint?: string;
      /** The Azurite development account on its default loopback ports (the host may start Azurite). */
      readonly isDevelopmentStorage: boolean;
    }
  | {
      readonly kind: 'identity';
      readonly setting: string;
      readonly queueEndpoint: string;
      readonly isDevelopmentStorage: false;
    };

function endpointFor(parts: Record<string, string>, service: 'blob' | 'queue' | 'table'): string | undefined {
  const explicit = parts[`${service}endpoint`];
  if (explicit) return explicit.replace(/\/+$/, '');
  const account = parts.accountname;
  if (!account) return undefined;
  const protocol = parts.defaultendpointsprotocol ?? 'https';
  const suffix = parts.endpointsuffix ?? 'core.windows.net';
  return `${protocol}://${account}.${service}.${suffix}`;
}

function isLoopbackDefault(endpoint: string | undefined, port: number): boolean {
  if (!endpoint) return false;
  try {
    const u = new URL(endpoint);
    return (u.hostname === '127.0.0.1' || u.hostname === 'localhost') && Number(u.port) === port;
  } catch {
    return false;
  }
}

/**
 * Resolves a binding's `connection` the way the Functions host does: empty → AzureWebJobsStorage; the
 * setting NAME, else `AzureWebJobsNAME`; else identity-based `NAME__queueServiceUri` / `NAME__serviceUri` /
 * `NAME__accountName`. AzureWebJobsStorage defaults to `UseDevelopmentStorage=true` locally.
 */
export function resolveStorageConnection(name: string | undefined, env: Env): StorageConnection {
  const setting = name && name.trim() ? name.trim() : 'AzureWebJobsStorage';
  let raw = env[setting] ?? env[`AzureWebJobs${setting}`];
  if (raw === undefined || raw.trim() === '') {
    const queueUri = env[`${setting}__queueServiceUri`] ?? env[`${setting}__serviceUri`];
    const account = env[`${setting}__accountName`];
    if (queueUri)
      return { kind: 'identity', setting, queueEndpoint: queueUri.replace(/\/+$/, ''), isDevelopmentStorage: false };
    if (account)
      return {
        kind: 'identity',
        setting,
        queueEndpoint: `https://${account}.queue.core.windows.net`,
        isDevelopmentStorage: false,
      };
    if (setting !== 'AzureWebJobsStorage') {
      throw new HostConfigError(
        `connection '${setting}': no app setting ${setting} (or ${setting}__queueServiceUri / ${setting}__accountName)`,
      );
    }
    raw = 'UseDevelopmentStorage=true';
  }
  const parts = parseConnectionString(raw);
  if ((parts.usedevelopmentstorage ?? '').toLowerCase() === 'true') {
    const cs = devConnectionString();
    const p = parseConnectionString(cs);
    return {
      kind: 'connectionString',
      setting,
      connectionString: cs,
      queueEndpoint: endpointFor(p, 'queue')!,
      blobEndpoint: endpointFor(p, 'blob'),
      tableEndpoint: endpointFor(p, 'table'),
      isDevelopmentStorage: true,
    };
  }
  const queueEndpoint = endpointFor(parts, 'queue');
  if (!queueEndpoint)
    throw new HostConfigError(`connection '${setting}': the connection string names no QueueEndpoint or AccountName`);
  const blobEndpoint = endpointFor(parts, 'blob');
  const tableEndpoint = endpointFor(parts, 'table');
  const isDevelopmentStorage =
    parts.accountname === DEV_ACCOUNT &&
    isLoopbackDefault(queueEndpoint, DEV_PORTS.queue) &&
    isLoopbackDefault(blobEndpoint, DEV_PORTS.blob) &&
    isLoopbackDefault(tableEndpoint, DEV_PORTS.table);
  return {
    kind: 'connectionString',
    setting,
    connectionString: raw,
    queueEndpoint,
    blobEndpoint,
    tableEndpoint,
    isDevelopmentStorage,
  };
}

/** Storage queue naming rules (3–63 chars, lowercase letters, digits, single dashes, not at the ends). */
export function validateQueueName(name: string, where: string): void {
  if (!/^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/.test(name) || name.length < 3 || name.length > 63) {
    throw new HostConfigError(
      `${where}: '${name}' is not a valid queue name (3-63 characters: lowercase letters, digits and single dashes, starting and ending with a letter or digit)`,
    );
  }
}
