/**
 * The CLI as a client of a deployed endpoint (lib/cli/client.ts):
 *   oci-import import --endpoint URL [--key K] --source REF [--image R:T]… [--no-wait]
 *   oci-import status ID | list [--status S] [--limit N] | cancel ID   (each with --endpoint)
 * `import` follows the import's status URL with the same progress line as a local import, honouring the
 * service's Retry-After. Exit status: 0 succeeded (or: the command did what it was asked), 1 the import failed
 * or was canceled, or the service refused (its code and message), 2 usage.
 */
import { parseArgs } from 'node:util';
import { errorCode, errorMessage } from '../errors.js';
import { parseRetryAfter, sleep } from '../retry.js';
import { ENDED } from '../api/status-view.js';
import { ApiError, ImportsClient, viewIn, type ImportView } from './client.js';
import { bearerSource, checkScope } from './entra-token.js';
import type { Io } from './io.js';
import { jsonError } from './json-error.js';
import { Progress } from './progress.js';
import { oneLine } from './terminal.js';
import { UsageError } from './usage-error.js';

export const REMOTE_OPTIONS = {
  endpoint: { type: 'string' },
  key: { type: 'string' },
  scope: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'no-wait': { type: 'boolean' },
  source: { type: 'string' },
  image: { type: 'string', multiple: true },
  repository: { type: 'string' },
  registry: { type: 'string' },
  force: { type: 'boolean' },
  platform: { type: 'string', multiple: true },
  'include-referrers': { type: 'boolean' },
  'referrer-type': { type: 'string', multiple: true },
  credential: { type: 'string' },
  username: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  password: { type: 'string' },
  status: { type: 'string' },
  limit: { type: 'string' },
  wait: { type: 'boolean' },
  // local-only options, refused with a reason
  target: { type: 'string' },
  'target-username': { type: 'string' },
  'target-password': { type: 'string' },
  'target-auth': { type: 'string' },
  insecure: { type: 'string', multiple: true },
  'wait-rate-limit': { type: 'boolean' },
} as const;

type Values = Partial<Record<keyof typeof REMOTE_OPTIONS, string | boolean | string[]>>;

/** Failures whose JSON answer is already on stdout (a refused cancel prints the import). */
const JSON_PRINTED = new WeakSet<object>();
/** Polling without a Retry-After from the service. */
const DEFAULT_POLL_MS = 5_000;
const LOCAL_ONLY: readonly (keyof Values)[] = [
  'target',
  'target-username',
  'target-password',
  'target-auth',
  'insecure',
  'wait-rate-limit',
];

/** Runs a command against `--endpoint` (or $OCI_IMPORT_ENDPOINT). */
export async function remote(command: string, args: readonly string[], io: Io): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: REMOTE_OPTIONS,
      strict: true,
      allowPositionals: command !== 'import',
    }) as { values: Values; positionals: string[] };
    if (values.help) {
      io.stdout.write((await import('./help.js')).commandHelp(command));
      return 0;
    }
    const client = clientOf(values, io);
    const json = values.json === true;
    if (command === 'import') return await importRemote(client, values, io);
    if (command === 'list') return await list(client, values, io, json);
    const id = positionals[0];
    if (positionals.length !== 1 || !id) throw new UsageError(`${command} needs exactly one import id`);
    if (command === 'status' && values.wait) return outcome(await follow(client, id, '0', io), io, json);
    return command === 'status' ? await status(client, id, io, json) : await cancel(client, id, io, json);
  } catch (err) {
    if (args.includes('--json') && !JSON_PRINTED.has(err as object)) jsonError(err, io);
    return failed(err, io);
  }
}

function clientOf(values: Values, io: Io): ImportsClient {
  const endpoint = (values.endpoint as string | undefined) ?? io.env.OCI_IMPORT_ENDPOINT;
  if (!endpoint)
    throw new UsageError(
      '--endpoint is required (the API base, e.g. https://myapp.azurewebsites.net/api; or OCI_IMPORT_ENDPOINT)',
    );
  const scope = (values.scope as string | undefined) ?? (io.env.OCI_IMPORT_SCOPE?.trim() || undefined);
  if (scope !== undefined && values.key !== undefined)
    throw new UsageError(
      '--key and --scope are two ways in: a function key, or an Entra ID token for a service with AUTH_MODE=entra; give one',
    );
  if (values.key !== undefined)
    io.stderr.write(
      'oci-import: warning: --key on the command line is visible to other users of this machine (ps); use $OCI_IMPORT_KEY instead\n',
    );
  try {
    if (scope !== undefined) return new ImportsClient(endpoint, bearerSource(checkScope(scope)));
    return new ImportsClient(endpoint, (values.key as string | undefined) ?? (io.env.OCI_IMPORT_KEY || undefined));
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
}

function failed(err: unknown, io: Io): number {
  const code = errorCode(err);
  if (err instanceof UsageError || code === 'USAGE' || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    io.stderr.write(`oci-import: ${errorMessage(err)}\nRun "oci-import --help" for usage.\n`);
    return 2;
  }
  io.stderr.write(
    `oci-import: ${err instanceof ApiError && err.status ? `the service refused (${err.status}) ` : ''}[${oneLine(code)}]: ${oneLine(errorMessage(err))}\n`,
  );
  return 1;
}

// ---- import ----------------------------------------------------------------------------------------

async function importRemote(client: ImportsClient, values: Values, io: Io): Promise<number> {
  const refused = LOCAL_ONLY.find((k) => values[k] !== undefined);
  if (refused)
    throw new UsageError(
      `--${refused} is for a local import; with --endpoint (or $OCI_IMPORT_ENDPOINT) the deployment owns its target registry and its settings`,
    );
  const created = await client.create(await requestBody(values, io));
  const { id, statusUrl } = created.body;
  if (values['no-wait']) {
    io.stdout.write(values.json ? `${JSON.stringify(created.body, null, 2)}\n` : `${id}\n${statusUrl}\n`);
    return 0;
  }
  io.stderr.write(`import ${id} ${created.body.status}: ${statusUrl}\n`);
  const view = await follow(client, statusUrl, created.headers.get('retry-after'), io);
  return outcome(view, io, values.json === true);
}

/** The POST body from the flags: exactly the request fields the service takes. */
async function requestBody(values: Values, io: Io): Promise<Record<string, unknown>> {
  if (!values.source) throw new UsageError('--source is required');
  const password = await passwordOf(values, io);
  if (values.username !== undefined && password === undefined)
    throw new UsageError('--username needs a password: --password-stdin or OCI_IMPORT_PASSWORD');
  if (password !== undefined && values.credential !== undefined)
    throw new UsageError('give either --username/--password-stdin or --credential, not both');
  const body: Record<string, unknown> = { source: values.source };
  const fields: [string, unknown][] = [
    ['images', values.image],
    ['repository', values.repository],
    ['registry', values.registry],
    ['platforms', values.platform],
    ['credential', values.credential],
    ['username', values.username],
    ['password', password],
    ['force', values.force || undefined],
    ['includeReferrers', values['include-referrers'] || undefined],
    ['referrerTypes', values['referrer-type']],
  ];
  for (const [name, value] of fields) if (value !== undefined) body[name] = value;
  return body;
}

async function passwordOf(values: Values, io: Io): Promise<string | undefined> {
  if (values['password-stdin'] && values.password !== undefined)
    throw new UsageError('--password and --password-stdin are mutually exclusive');
  if (values['password-stdin']) {
    const chunks: Buffer[] = [];
    for await (const c of io.stdin ?? process.stdin) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
    const text = Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
    if (!text) throw new UsageError('--password-stdin: standard input was empty');
    return text;
  }
  if (values.password !== undefined) {
    io.stderr.write(
      'oci-import: warning: --password on the command line is visible to other users of this machine (ps); use --password-stdin or $OCI_IMPORT_PASSWORD instead\n',
    );
    return values.password as string;
  }
  return io.env.OCI_IMPORT_PASSWORD || undefined;
}

/**
 * Polls the status URL (or an import id: `status ID --wait`) as often as its Retry-After says until the import
 * ends, drawing progress.
 */
async function follow(client: ImportsClient, url: string, retryAfter: string | null, io: Io): Promise<ImportView> {
  const progress = new Progress(io.stderr, Boolean(io.stderr.isTTY));
  let wait = parseRetryAfter(retryAfter ?? undefined) ?? DEFAULT_POLL_MS;
  for (;;) {
    await sleep(wait);
    const answer = await client.status(url);
    progress.remote(answer.body.status, answer.body.progress);
    if (ENDED.has(answer.body.status)) {
      progress.end();
      return answer.body;
    }
    wait = parseRetryAfter(answer.headers.get('retry-after') ?? undefined) ?? DEFAULT_POLL_MS;
  }
}

function outcome(view: ImportView, io: Io, json: boolean): number {
  if (json) io.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
  if (view.status === 'succeeded') {
    if (!json) io.stdout.write(`imported ${view.source} → ${view.targets.join(', ')}\ndigest ${view.digest}\n`);
    return 0;
  }
  const error = view.error ?? { code: view.status.toUpperCase(), message: `the import ended ${view.status}` };
  io.stderr.write(`oci-import: import ${oneLine(view.status)} [${oneLine(error.code)}]: ${oneLine(error.message)}\n`);
  return 1;
}

// ---- status, list, cancel --------------------------------------------------------------------------

const MiB = 1024 * 1024;

function describe(v: ImportView): string {
  const p = v.progress;
  const lines = [
    `${v.id}  ${v.status}${v.stalled ? ' (stalled)' : ''}`,
    `  ${v.source} → ${v.targets.join(', ') || '(by digest)'}`,
    `  ${(p.bytesCopied / MiB).toFixed(1)} / ${(p.bytesTotal / MiB).toFixed(1)} MiB, blobs ${p.blobsDone}/${p.blobsTotal}, created ${v.createdAt}`,
    ...(v.digest ? [`  digest ${v.digest}`] : []),
    ...(v.error ? [`  [${oneLine(v.error.code)}] ${oneLine(v.error.message)}`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

async function status(client: ImportsClient, id: string, io: Io, json: boolean): Promise<number> {
  const { body } = await client.status(id);
  io.stdout.write(json ? `${JSON.stringify(body, null, 2)}\n` : describe(body));
  return 0;
}

async function list(client: ImportsClient, values: Values, io: Io, json: boolean): Promise<number> {
  const raw = values.limit as string | undefined;
  const limit = raw === undefined ? 20 : Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
    throw new UsageError('--limit must be a whole number from 1 to 10000');
  const value: ImportView[] = [];
  let next: string | undefined;
  // Pages of at most 100 (the service's largest), followed until `limit` imports are in.
  do {
    const page = await client.list(
      next ? { next } : { status: values.status as string | undefined, limit: Math.min(100, limit) },
    );
    value.push(...page.body.value.slice(0, limit - value.length));
    next = page.body.nextLink;
  } while (next && value.length < limit);
  if (json) io.stdout.write(`${JSON.stringify({ value }, null, 2)}\n`);
  else io.stdout.write(value.length ? value.map(describe).join('') : 'no imports\n');
  return 0;
}

async function cancel(client: ImportsClient, id: string, io: Io, json: boolean): Promise<number> {
  try {
    const { body } = await client.cancel(id);
    io.stdout.write(json ? `${JSON.stringify(body, null, 2)}\n` : `canceled ${body.id}\n`);
    return 0;
  } catch (err) {
    const view = err instanceof ApiError ? viewIn(err.body) : undefined;
    if (json && view) {
      // the import (with the refusal's code on stderr) is the JSON answer: no second object on stdout
      io.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
      JSON_PRINTED.add(err as object);
    }
    throw err;
  }
}
