/**
 * host.json values the app itself must know — the queue trigger's `maxDequeueCount`, so a step can tell
 * its last delivery — resolved the way the Functions host resolves its configuration: an app setting
 * `AzureFunctionsJobHost__<path>` (segments joined by `__`; keys case-insensitive, as in .NET
 * configuration) wins over host.json ("Override host.json values",
 * https://learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-values).
 * Reading host.json alone would miss an override set in the portal or the Bicep.
 */
import { readFileSync } from 'node:fs';

type Env = Record<string, string | undefined>;

/** The queues extension's default (host.json `extensions.queues.maxDequeueCount`). */
export const DEFAULT_MAX_DEQUEUE_COUNT = 5;

/** The value at `path` (e.g. `['extensions', 'queues', 'maxDequeueCount']`): the app setting first, then host.json. */
export function hostSetting(env: Env, hostJson: unknown, path: readonly string[]): unknown {
  const key = ['AzureFunctionsJobHost', ...path].join('__').toLowerCase();
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && name.toLowerCase() === key) return value;
  }
  let node: unknown = hostJson;
  for (const segment of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    const match = Object.keys(node).find((k) => k.toLowerCase() === segment.toLowerCase());
    if (match === undefined) return undefined;
    node = (node as Record<string, unknown>)[match];
  }
  return node;
}

/** Deliveries of a queue message before the host moves it to `<queue>-poison`. Throws on a value the host would refuse. */
export function maxDequeueCount(env: Env, hostJson: unknown): number {
  const raw = hostSetting(env, hostJson, ['extensions', 'queues', 'maxDequeueCount']);
  if (raw === undefined || raw === null || (typeof raw === 'string' && raw.trim() === ''))
    return DEFAULT_MAX_DEQUEUE_COUNT;
  const n = typeof raw === 'string' ? Number(raw.trim()) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new Error(
      `extensions.queues.maxDequeueCount must be a whole number of at least 1 (got ${JSON.stringify(raw)})`,
    );
  }
  return n;
}

/**
 * `name` in the app root, seen from a module of functions/: the root is functions/'s parent when run from
 * source, and the parent of dist/ when compiled (dist/functions/).
 */
export function appFile(name: string, moduleUrl: string): URL {
  const parent = new URL('..', moduleUrl);
  const root = parent.pathname.endsWith('/dist/') ? new URL('..', parent) : parent;
  return new URL(name, root);
}

/** The first of `candidates` that is a readable JSON file (host.json beside the sources or the build), else `{}`. */
export function readHostJson(candidates: readonly URL[]): unknown {
  for (const url of candidates) {
    let text: string;
    try {
      text = readFileSync(url, 'utf8');
    } catch {
      continue; // try the next place
    }
    return JSON.parse(text) as unknown;
  }
  return {};
}
