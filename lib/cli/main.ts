/**
 * `oci-import`: the same engine the functions run, in one process, with a progress line.
 * Exit codes: 0 imported, 1 the import failed, 2 the command line is wrong.
 */
import { parseArgs } from 'node:util';
import { isResourceId } from '../azure/arm.js';
import { azureSettings, entraTokenCredentials, registryResolver } from '../azure/clients.js';
import { loadConfig, settingsHelp, splitList, type Config, type TargetAuth } from '../config.js';
import { ImportEngine, runImport } from '../engine/engine.js';
import { referrerViews, type BlobState, type ImportRequest } from '../engine/types.js';
import { OciImportError, errorCode, errorMessage } from '../errors.js';
import type { Credentials } from '../oci/auth.js';
import { MEDIA_TYPE } from '../oci/referrers.js';
import { formatReference, normalizeRegistry, parseReference, validateRegistry } from '../oci/reference.js';
import { Registries } from '../registries.js';
import { DEFAULT_RETRY } from '../retry.js';
import { Progress } from './progress.js';
import { oneLine, printableStream } from './terminal.js';
import { UsageError } from './usage-error.js';

export interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Where `--password-stdin` reads from (default: the process's stdin). */
  readonly stdin?: NodeJS.ReadableStream;
  readonly env: Record<string, string | undefined>;
}

export const USAGE = `oci-import — copy images and OCI artifacts between registries, without Docker

Usage:
  oci-import import --source REF [--target HOST] [--image REPO:TAG]... [options]
  oci-import sync --rules FILE [--target HOST] [--dry-run] [options]
  oci-import import --endpoint URL [--key KEY] --source REF [--image REPO:TAG]... [--no-wait] [options]
  oci-import status ID --endpoint URL      oci-import cancel ID --endpoint URL
  oci-import list [--status S] [--limit N] --endpoint URL

Import options:
  --source REF               image to copy: docker.io/library/nginx:1.27, host:5000/app@sha256:…
  --target HOST              target registry (default: $TARGET_REGISTRY)
  --image REPO:TAG           target name; repeat for several tags (default: the source's own name)
  --repository REPO          import by digest into REPO without a tag
  --force                    move target tags that already point elsewhere
  --platform OS/ARCH         only this platform of a multi-platform image; repeatable
  --include-referrers        copy the image's referrers too: signatures, SBOMs, attestations (OCI 1.1
                             referrers API or fallback tag sha256-<hex>, cosign's .sig/.att/.sbom tags)
  --referrer-type TYPE       only referrers of this artifactType (repeatable; with --include-referrers)
  --registry R               source registry: login server, or ARM resource ID of an Azure Container
                             Registry (/subscriptions/…/registries/NAME: resolved and pulled with the
                             managed identity); --source may then omit the host
  --username U               source registry username; the password comes from --password-stdin or
                             $OCI_IMPORT_PASSWORD (a password alone is an Entra ID access token, e.g. of
                             another tenant, exchanged at the registry: ACR only)
  --password-stdin           read the source password from standard input (as docker login does)
  --password P               the source password on the command line: visible to other local users in
                             the process list; prefer --password-stdin or $OCI_IMPORT_PASSWORD
  --target-username U        target registry username (default: $TARGET_USERNAME); its password from
                             $OCI_IMPORT_TARGET_PASSWORD or $TARGET_PASSWORD (or --target-password P)
  --target-auth MODE         managed-identity (Entra ID → ACR token exchange), basic or anonymous
                             (default: $TARGET_AUTH, else basic with target credentials, else anonymous)
  --insecure HOST            use plain HTTP for HOST (repeatable; also $INSECURE_REGISTRIES)
  --wait-rate-limit          wait when a registry asks to retry later (up to $MAX_RETRY_AFTER_SECONDS,
                             3600); without it a wait longer than 30 s fails at once with RATE_LIMITED
  --json                     print the result as JSON on stdout
  -h, --help                 show this help

Sync options (one pass over the rules: what differs from the source is imported, by HEAD comparison):
  --rules FILE               JSON sync rules (see README); named credentials from REGISTRY_CREDENTIALS__<name>__*
  --dry-run                  print the plan, write nothing
  --target, --target-username, --target-auth, --insecure, --wait-rate-limit, --json as for import

A deployed service (--endpoint: the API base URL, e.g. https://myapp.azurewebsites.net/api, or
$OCI_IMPORT_ENDPOINT): import sends the request there and follows its status with the same progress line;
the deployment owns its target (--target and the other target options are refused).
  --key KEY                  the function key, sent as x-functions-key (prefer $OCI_IMPORT_KEY)
  --no-wait                  print the import id and status URL and exit at once
  --credential NAME          a named credential of the deployment, instead of --username
  --include-referrers, --referrer-type TYPE  as for a local import (the service checks them)
  --status S                 list: only imports in these states (comma list: queued,running,waiting,
                             succeeded,failed,canceled)
  --limit N                  list: at most N imports, newest first (default 20)
  status, list and cancel take --json too. Exit status: 0 succeeded (status/list/cancel: done), 1 the
  import failed or was canceled, or the service refused ([CODE]: message), 2 usage error.

${settingsHelp()}
CHUNK_SIZE unset: each blob as one streamed PATCH.
Exit status: 0 imported, 1 import failed, 2 usage error.
`;

const OPTIONS = {
  target: { type: 'string' }, 'target-username': { type: 'string' }, 'target-password': { type: 'string' },
  'target-auth': { type: 'string' }, 'wait-rate-limit': { type: 'boolean' },
  insecure: { type: 'string', multiple: true }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
} as const;
const IMPORT_OPTIONS = {
  source: { type: 'string' }, image: { type: 'string', multiple: true }, repository: { type: 'string' },
  force: { type: 'boolean' }, platform: { type: 'string', multiple: true },
  'include-referrers': { type: 'boolean' }, 'referrer-type': { type: 'string', multiple: true },
  username: { type: 'string' }, password: { type: 'string' }, 'password-stdin': { type: 'boolean' }, registry: { type: 'string' },
} as const;
const SYNC_OPTIONS = { rules: { type: 'string' }, 'dry-run': { type: 'boolean' } } as const;

type Values = Partial<Record<keyof typeof OPTIONS | keyof typeof IMPORT_OPTIONS | keyof typeof SYNC_OPTIONS, string | boolean | string[]>>;
const str = (v: Values, k: keyof Values): string | undefined => v[k] as string | undefined;
const flag = (v: Values, k: keyof Values): boolean => v[k] === true;
const list = (v: Values, k: keyof Values): string[] | undefined => v[k] as string[] | undefined;

/** Replaces every secret we were given by *** in a text bound for the terminal. */
function redactor(secrets: readonly (string | undefined)[]): (text: string) => string {
  const kept = secrets.filter((s): s is string => !!s && s.length >= 3);
  return (text) => kept.reduce((t, s) => t.split(s).join('***'), text);
}

export async function main(argv: readonly string[], given: Io): Promise<number> {
  // registry text reaches the terminal only as printable characters (terminal.ts)
  const io: Io = { ...given, stdout: printableStream(given.stdout), stderr: printableStream(given.stderr) };
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    (command ? io.stdout : io.stderr).write(USAGE);
    return command ? 0 : 2;
  }
  // A deployed service (status, list, cancel, import --endpoint): its own module, loaded only for these.
  if (['status', 'list', 'cancel'].includes(command) || (command === 'import' && rest.some((a) => a === '--endpoint' || a.startsWith('--endpoint=')))) {
    return (await import('./remote.js')).remote(command, rest, io);
  }
  if (command !== 'import' && command !== 'sync') {
    io.stderr.write(`oci-import: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  let redact = (t: string): string => t;
  try {
    const { values } = parseArgs({
      args: [...rest], strict: true, allowPositionals: false,
      options: { ...OPTIONS, ...(command === 'import' ? IMPORT_OPTIONS : SYNC_OPTIONS) },
    }) as { values: Values };
    if (values.help) {
      io.stdout.write(USAGE);
      return 0;
    }
    const session = await Session.open(command, values, io);
    redact = session.redact;
    return command === 'sync' ? await session.sync() : await session.import();
  } catch (err) {
    return failure(err, io, redact);
  }
}

function failure(err: unknown, io: Io, redact: (t: string) => string): number {
  const code = errorCode(err);
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    io.stderr.write(`oci-import: ${oneLine(redact(errorMessage(err)))}\nRun "oci-import --help" for usage.\n`);
    return 2;
  }
  // (INVALID_REQUEST of the request's side: what the command asked for cannot be imported, e.g. --repository with a tag)
  if (['INVALID_SETTING', 'INVALID_REFERENCE', 'INVALID_RULES', 'INVALID_RESOURCE_ID'].includes(code) || (code === 'INVALID_REQUEST' && (err as OciImportError).side === 'request')) {
    io.stderr.write(`oci-import: ${oneLine(redact(errorMessage(err)))}\n`);
    return 2;
  }
  io.stderr.write(`\noci-import: import failed [${oneLine(code)}]: ${oneLine(redact(errorMessage(err)))}\n`);
  return 1;
}

/** Everything one command needs, read from the flags and the environment once. */
class Session {
  private constructor(
    private readonly values: Values,
    private readonly io: Io,
    private readonly config: Config,
    private readonly registries: Registries,
    readonly target: string,
    private readonly sourceSecret: string | undefined,
    readonly redact: (t: string) => string,
  ) {}

  static async open(command: 'import' | 'sync', values: Values, io: Io): Promise<Session> {
    const env = io.env;
    const sourceSecret = command === 'import' ? await sourcePassword(values, io) : undefined;
    const targetPassword = str(values, 'target-password') ?? env.OCI_IMPORT_TARGET_PASSWORD;
    if (str(values, 'target-password') !== undefined) warnCommandLineSecret(io, '--target-password', 'OCI_IMPORT_TARGET_PASSWORD');
    const redact = redactor([sourceSecret, targetPassword, env.TARGET_PASSWORD]);
    const loaded = loadConfig(env);
    if (command === 'import' && !values.source) throw new UsageError('--source is required');
    if (command === 'sync' && !values.rules) throw new UsageError('--rules is required');
    const targetHost = str(values, 'target') ?? loaded.targetRegistry;
    if (!targetHost) throw new UsageError('--target is required (or set TARGET_REGISTRY)');
    validateRegistry(targetHost);
    const targetUser = str(values, 'target-username');
    if (targetUser !== undefined && targetPassword === undefined) {
      throw new UsageError('--target-username needs a password: set OCI_IMPORT_TARGET_PASSWORD (or give --target-password)');
    }
    const targetAuth = (str(values, 'target-auth') ?? (targetUser ? 'basic' : loaded.targetAuth)) as TargetAuth;
    if (!['managed-identity', 'basic', 'anonymous'].includes(targetAuth)) throw new UsageError(`--target-auth "${targetAuth}" is not one of managed-identity, basic, anonymous`);
    const targetCredentials = targetUser ? { username: targetUser, password: targetPassword! } : undefined;
    if (targetAuth === 'basic' && !targetCredentials && !loaded.targetUsername) {
      throw new UsageError('--target-auth basic needs --target-username and a password (or TARGET_USERNAME/TARGET_PASSWORD)');
    }
    // Unlike the service, whose steps end and resume, one CLI process streams each blob as one PATCH
    // (as `docker push` does) unless CHUNK_SIZE asks for chunks.
    const config: Config = { ...loaded, targetAuth, chunkSize: env.CHUNK_SIZE?.trim() ? loaded.chunkSize : Infinity };
    const registries = new Registries({
      config, guardSources: false, targetCredentials, insecure: splitList((list(values, 'insecure') ?? []).join(',')),
      retry: { ...DEFAULT_RETRY, maxRetryAfterMs: flag(values, 'wait-rate-limit') ? config.maxRetryAfterSeconds * 1000 : DEFAULT_RETRY.maxRetryAfterMs },
    });
    return new Session(values, io, config, registries, normalizeRegistry(targetHost), sourceSecret, redact);
  }

  async sync(): Promise<number> {
    // loaded only for this command: the rules schema and tag selection cost start-up time
    const { runSync } = await import('./sync-command.js');
    return runSync({
      rulesFile: str(this.values, 'rules')!, dryRun: flag(this.values, 'dry-run'), json: flag(this.values, 'json'),
      config: this.config, registries: this.registries, target: this.target, io: this.io, redact: this.redact,
    });
  }

  async import(): Promise<number> {
    const { request, source, credentials, resourceId } = await this.request();
    const sides = { source: this.registries.source(source, credentials && { kind: 'inline', credentials }, resourceId), target: this.registries.target(this.target) };
    const progress = new Progress(this.io.stderr, Boolean(this.io.stderr.isTTY));
    const engine = new ImportEngine({
      source: sides.source.client, target: sides.target.client,
      chunkSize: this.config.chunkSize, fetchConcurrency: this.config.fetchConcurrency, copyMemory: this.config.copyMemory,
      maxManifests: this.config.maxManifests, maxBlobs: this.config.maxBlobs, maxImportBytes: this.config.maxImportBytes,
      events: {
        onBytes: (n) => progress.bytes(n),
        onBlobDone: (s: BlobState) => progress.blobDone(s),
        onNotice: (m) => progress.notice(this.redact(m)),
      },
    });
    let result;
    try {
      result = await runImport(engine, request, {
        blobConcurrency: this.config.blobConcurrency, stepMs: this.config.stepBudgetSeconds * 1000, onPlan: (p) => progress.start(p),
      });
    } catch (err) {
      throw this.registries.explain(err, sides);
    }
    progress.end();
    this.print(result);
    return 0;
  }

  /** The import request from the flags; `--registry` may be an ACR's resource ID, resolved through Resource Manager. */
  private async request(): Promise<{ request: ImportRequest; source: string; credentials?: Credentials; resourceId?: string }> {
    const v = this.values;
    let registry = str(v, 'registry');
    let resourceId: string | undefined;
    if (registry !== undefined && isResourceId(registry)) {
      const resolved = await registryResolver(azureSettings(this.config))(registry);
      resourceId = resolved.id;
      registry = resolved.loginServer;
    }
    if (registry !== undefined) validateRegistry(registry);
    const source = parseReference(str(v, 'source')!, registry ? { defaultRegistry: registry } : {});
    if (registry && source.registry !== normalizeRegistry(registry)) {
      throw new UsageError(`--source names registry ${source.registry} but --registry is ${registry}; give the host in one of them only`);
    }
    const username = str(v, 'username');
    if (username !== undefined && this.sourceSecret === undefined) {
      throw new UsageError('--username needs a password: --password-stdin, OCI_IMPORT_PASSWORD, or --password (give both the username and the password)');
    }
    const credentials = this.sourceSecret === undefined ? undefined
      : username === undefined ? entraTokenCredentials(this.sourceSecret) : { username, password: this.sourceSecret };
    const request: ImportRequest = {
      source: registry ? formatReference(source) : str(v, 'source')!, target: this.target, images: list(v, 'image'),
      repository: str(v, 'repository'), force: flag(v, 'force'), platforms: list(v, 'platform'), ...referrerOptions(v),
    };
    return { request, source: source.registry, credentials, resourceId };
  }

  private print(result: Awaited<ReturnType<typeof runImport>>): void {
    const names = [...result.tagged, ...result.unchanged].map((n) => `${this.target}/${n}`);
    if (flag(this.values, 'json')) {
      this.io.stdout.write(JSON.stringify({
        source: str(this.values, 'source'), target: this.target, digest: result.digest, mediaType: result.mediaType,
        tagged: result.tagged, unchanged: result.unchanged, notes: result.plan.notes,
        ...(result.plan.referrers ? { referrers: referrerViews(result.plan) } : {}),
        blobs: result.blobs.map((b) => ({ digest: b.digest, size: b.size, outcome: b.phase === 'done' ? b.outcome : undefined })),
      }, null, 2) + '\n');
      return;
    }
    const repositories = [...new Set(result.plan.target.refs.map((r) => r.repository))];
    const where = names.length ? names.join(', ') : `${this.target}/${repositories.join(', ')}@${result.digest}`;
    this.io.stdout.write(`imported ${str(this.values, 'source')} → ${where}\ndigest ${result.digest}\n`);
  }
}

/** `--include-referrers` and its `--referrer-type`s (media types, as the request schema checks them). */
function referrerOptions(v: Values): Pick<ImportRequest, 'includeReferrers' | 'referrerTypes'> {
  const types = list(v, 'referrer-type');
  if (types && !flag(v, 'include-referrers')) throw new UsageError('--referrer-type selects which referrers --include-referrers copies: give --include-referrers too');
  const bad = types?.find((t) => !MEDIA_TYPE.test(t));
  if (bad !== undefined) throw new UsageError(`--referrer-type "${bad}" is not a media type (e.g. application/vnd.dev.cosign.artifact.sig.v1+json)`);
  return flag(v, 'include-referrers') ? { includeReferrers: true, ...(types ? { referrerTypes: types } : {}) } : {};
}

/** The source password: --password-stdin, else --password (warned), else $OCI_IMPORT_PASSWORD. */
async function sourcePassword(values: Values, io: Io): Promise<string | undefined> {
  const fromStdin = flag(values, 'password-stdin');
  const inline = str(values, 'password');
  if (fromStdin && inline !== undefined) throw new UsageError('--password and --password-stdin are mutually exclusive');
  if (fromStdin) {
    const text = (await readAll(io.stdin ?? process.stdin)).replace(/\r?\n$/, '');
    if (!text) throw new UsageError('--password-stdin: standard input was empty');
    return text;
  }
  if (inline !== undefined) {
    warnCommandLineSecret(io, '--password', 'OCI_IMPORT_PASSWORD');
    return inline;
  }
  return io.env.OCI_IMPORT_PASSWORD || undefined;
}

function warnCommandLineSecret(io: Io, option: string, variable: string): void {
  io.stderr.write(`oci-import: warning: ${option} on the command line is visible to other users of this machine (ps); use ${option === '--password' ? '--password-stdin or ' : ''}$${variable} instead\n`);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks).toString('utf8');
}
