/**
 * `oci-import`: the same engine the functions run, in one process, with a progress line.
 * Exit codes: 0 imported, 1 the import failed, 2 the command line is wrong.
 */
import { parseArgs } from 'node:util';
import { isResourceId } from '../azure/arm.js';
import { azureSettings, entraTokenCredentials, registryResolver } from '../azure/clients.js';
import { loadConfig, splitList, type Config, type TargetAuth } from '../config.js';
import { engineFromConfig, runImport } from '../engine/engine.js';
import { referrerViews, type BlobState, type ImportRequest } from '../engine/types.js';
import { OciImportError, errorCode, errorMessage } from '../errors.js';
import type { Credentials } from '../oci/auth.js';
import { MEDIA_TYPE } from '../oci/referrers.js';
import { formatReference, normalizeRegistry, parseReference, validateRegistry } from '../oci/reference.js';
import { Registries } from '../sides/registries.js';
import { DEFAULT_RETRY } from '../retry.js';
import { dockerCredentials } from './docker-config.js';
import { commandHelp, USAGE, version } from './help.js';
import type { Io } from './io.js';
import { jsonError } from './json-error.js';
import { Progress } from './progress.js';
import { oneLine, printableStream } from './terminal.js';
import { UsageError } from './usage-error.js';

export type { Io } from './io.js';

export { USAGE } from './help.js';

const OPTIONS = {
  target: { type: 'string' },
  'target-username': { type: 'string' },
  'target-password': { type: 'string' },
  'target-auth': { type: 'string' },
  'wait-rate-limit': { type: 'boolean' },
  insecure: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;
const IMPORT_OPTIONS = {
  source: { type: 'string' },
  image: { type: 'string', multiple: true },
  repository: { type: 'string' },
  force: { type: 'boolean' },
  platform: { type: 'string', multiple: true },
  'include-referrers': { type: 'boolean' },
  'referrer-type': { type: 'string', multiple: true },
  username: { type: 'string' },
  password: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  registry: { type: 'string' },
} as const;
const SYNC_OPTIONS = {
  rules: { type: 'string' },
  'dry-run': { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
} as const;

type Values = Partial<
  Record<keyof typeof OPTIONS | keyof typeof IMPORT_OPTIONS | keyof typeof SYNC_OPTIONS, string | boolean | string[]>
>;
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
  if (command === '--version' || command === '-V' || command === 'version') {
    io.stdout.write(`oci-import ${version()}\n`);
    return 0;
  }
  if (!['import', 'sync', 'status', 'list', 'cancel'].includes(command)) {
    io.stderr.write(`oci-import: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(commandHelp(command));
    return 0;
  }
  // A deployed service (status, list, cancel, import with --endpoint or $OCI_IMPORT_ENDPOINT): its own module, loaded only for these.
  if (
    command !== 'sync' &&
    (command !== 'import' ||
      io.env.OCI_IMPORT_ENDPOINT ||
      rest.some((a) => a === '--endpoint' || a.startsWith('--endpoint=')))
  ) {
    return (await import('./remote.js')).remote(command, rest, io);
  }
  let redact = (t: string): string => t;
  try {
    const { values } = parseArgs({
      args: [...rest],
      strict: true,
      allowPositionals: false,
      options: { ...OPTIONS, ...(command === 'import' ? IMPORT_OPTIONS : SYNC_OPTIONS) },
    }) as { values: Values };
    const session = await Session.open(command, values, io);
    redact = session.redact;
    return command === 'sync' ? await session.sync() : await session.import();
  } catch (err) {
    if (rest.includes('--json')) jsonError(err, io, redact);
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
  if (
    ['INVALID_SETTING', 'INVALID_REFERENCE', 'INVALID_RULES', 'INVALID_RESOURCE_ID'].includes(code) ||
    (code === 'INVALID_REQUEST' && (err as OciImportError).side === 'request')
  ) {
    io.stderr.write(`oci-import: ${oneLine(redact(errorMessage(err)))}\n`);
    return 2;
  }
  io.stderr.write(`\noci-import: import failed [${oneLine(code)}]: ${oneLine(redact(errorMessage(err)))}\n`);
  const hint = insecureHint(err);
  if (hint) io.stderr.write(`${oneLine(hint)}\n`);
  return 1;
}

/** OpenSSL's words for a TLS handshake answered by a plain-HTTP server. */
const PLAIN_HTTP = /wrong version number|packet length too long|WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG/i;

/** When a registry answered TLS with plain HTTP: the hint to name it with --insecure (the host from the failed URL). */
export function insecureHint(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const { message, code } = e as { message?: string; code?: string };
    if (PLAIN_HTTP.test(`${code ?? ''} ${message ?? ''}`)) {
      const host = /https:\/\/([^/\s]+)/.exec(errorMessage(err))?.[1];
      return `hint: ${host ?? 'the registry'} answered TLS with plain HTTP; if it only speaks HTTP, give --insecure ${host ?? 'HOST'} (or add it to $INSECURE_REGISTRIES)`;
    }
  }
  return undefined;
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
    /** What `redact` hides; a source credential found in a Docker config joins it. */
    private readonly secrets: (string | undefined)[],
  ) {}

  static async open(command: 'import' | 'sync', values: Values, io: Io): Promise<Session> {
    const env = io.env;
    const sourceSecret = command === 'import' ? await sourcePassword(values, io) : undefined;
    const targetPassword = str(values, 'target-password') ?? env.OCI_IMPORT_TARGET_PASSWORD;
    if (str(values, 'target-password') !== undefined)
      warnCommandLineSecret(io, '--target-password', 'OCI_IMPORT_TARGET_PASSWORD');
    // (a list, not a copy: credentials found later in a Docker config are redacted too)
    const secrets = [sourceSecret, targetPassword, env.TARGET_PASSWORD];
    const redact = (text: string): string => redactor(secrets)(text);
    const loaded = loadConfig(env);
    if (command === 'import' && !values.source) throw new UsageError('--source is required');
    if (command === 'sync' && !values.rules) throw new UsageError('--rules is required');
    const targetHost = str(values, 'target') ?? loaded.targetRegistry;
    if (!targetHost) throw new UsageError('--target is required (or set TARGET_REGISTRY)');
    validateRegistry(targetHost);
    const { asked, targetAuth, targetCredentials } = await targetSignIn(
      values,
      env,
      loaded,
      targetHost,
      targetPassword,
    );
    secrets.push(targetCredentials?.password);
    // Unlike the service, whose steps end and resume, one CLI process streams each blob as one PATCH
    // (as `docker push` does) unless CHUNK_SIZE asks for chunks.
    const config: Config = {
      ...loaded,
      targetAuth,
      chunkSize: env.CHUNK_SIZE?.trim() ? loaded.chunkSize : Infinity,
      ...(asked === 'azure' ? { azureCredential: 'default' as const } : {}),
    };
    const registries = new Registries({
      config,
      guardSources: false,
      targetCredentials,
      insecure: splitList((list(values, 'insecure') ?? []).join(',')),
      retry: {
        ...DEFAULT_RETRY,
        maxRetryAfterMs: flag(values, 'wait-rate-limit')
          ? config.maxRetryAfterSeconds * 1000
          : DEFAULT_RETRY.maxRetryAfterMs,
      },
    });
    return new Session(values, io, config, registries, normalizeRegistry(targetHost), sourceSecret, redact, secrets);
  }

  async sync(): Promise<number> {
    // loaded only for this command: the rules schema and tag selection cost start-up time
    const { runSync } = await import('./sync-command.js');
    return runSync({
      rulesFile: str(this.values, 'rules')!,
      dryRun: flag(this.values, 'dry-run'),
      json: flag(this.values, 'json'),
      progress: !flag(this.values, 'quiet') && Boolean(this.io.stderr.isTTY),
      config: this.config,
      registries: this.registries,
      target: this.target,
      io: this.io,
      redact: this.redact,
    });
  }

  async import(): Promise<number> {
    const { request, source, credentials, resourceId } = await this.request();
    const sides = {
      source: this.registries.source(source, credentials && { kind: 'inline', credentials }, resourceId),
      target: this.registries.target(this.target),
    };
    const progress = new Progress(this.io.stderr, Boolean(this.io.stderr.isTTY));
    const engine = engineFromConfig(
      this.config,
      { source: sides.source.client, target: sides.target.client },
      {
        events: {
          onBytes: (n) => progress.bytes(n),
          onBlobDone: (s: BlobState) => progress.blobDone(s),
          onNotice: (m) => progress.notice(this.redact(m)),
        },
      },
    );
    let result;
    try {
      result = await runImport(engine, request, {
        blobConcurrency: this.config.blobConcurrency,
        stepMs: this.config.stepBudgetSeconds * 1000,
        onPlan: (p) => progress.start(p),
      });
    } catch (err) {
      throw this.registries.explain(err, sides);
    }
    progress.end();
    this.print(result);
    return 0;
  }

  /** The import request from the flags; `--registry` may be an ACR's resource ID, resolved through Resource Manager. */
  private async request(): Promise<{
    request: ImportRequest;
    source: string;
    credentials?: Credentials;
    resourceId?: string;
  }> {
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
      throw new UsageError(
        `--source names registry ${source.registry} but --registry is ${registry}; give the host in one of them only`,
      );
    }
    const username = str(v, 'username');
    if (username !== undefined && this.sourceSecret === undefined) {
      throw new UsageError(
        '--username needs a password: --password-stdin, OCI_IMPORT_PASSWORD, or --password (give both the username and the password)',
      );
    }
    // no flag names a source credential: what `docker login` (or podman, skopeo…) stored for that registry
    const credentials =
      this.sourceSecret === undefined
        ? resourceId
          ? undefined
          : await dockerCredentials(source.registry, this.io.env)
        : username === undefined
          ? entraTokenCredentials(this.sourceSecret)
          : { username, password: this.sourceSecret };
    this.secrets.push(credentials?.password);
    const request: ImportRequest = {
      source: registry ? formatReference(source) : str(v, 'source')!,
      target: this.target,
      images: list(v, 'image'),
      repository: str(v, 'repository'),
      force: flag(v, 'force'),
      platforms: list(v, 'platform'),
      ...referrerOptions(v),
    };
    return { request, source: source.registry, credentials, resourceId };
  }

  private print(result: Awaited<ReturnType<typeof runImport>>): void {
    const names = [...result.tagged, ...result.unchanged].map((n) => `${this.target}/${n}`);
    if (flag(this.values, 'json')) {
      this.io.stdout.write(
        JSON.stringify(
          {
            source: str(this.values, 'source'),
            target: this.target,
            digest: result.digest,
            mediaType: result.mediaType,
            tagged: result.tagged,
            unchanged: result.unchanged,
            notes: result.plan.notes,
            ...(result.plan.referrers ? { referrers: referrerViews(result.plan) } : {}),
            blobs: result.blobs.map((b) => ({
              digest: b.digest,
              size: b.size,
              outcome: b.phase === 'done' ? b.outcome : undefined,
            })),
          },
          null,
          2,
        ) + '\n',
      );
      return;
    }
    const repositories = [...new Set(result.plan.target.refs.map((r) => r.repository))];
    const where = names.length ? names.join(', ') : `${this.target}/${repositories.join(', ')}@${result.digest}`;
    this.io.stdout.write(`imported ${str(this.values, 'source')} → ${where}\ndigest ${result.digest}\n`);
  }
}

/** How the CLI signs in to the target: flags, then settings, then what `docker login` (podman, skopeo…) stored. */
async function targetSignIn(
  values: Values,
  env: Io['env'],
  loaded: Config,
  targetHost: string,
  targetPassword: string | undefined,
): Promise<{
  asked: string;
  targetAuth: TargetAuth;
  targetCredentials?: Credentials;
}> {
  const targetUser = str(values, 'target-username');
  if (targetUser !== undefined && targetPassword === undefined) {
    throw new UsageError(
      '--target-username needs a password: set OCI_IMPORT_TARGET_PASSWORD (or give --target-password)',
    );
  }
  const asked = str(values, 'target-auth') ?? (targetUser ? 'basic' : loaded.targetAuth);
  if (!['azure', 'managed-identity', 'basic', 'anonymous'].includes(asked))
    throw new UsageError(`--target-auth "${asked}" is not one of azure, managed-identity, basic, anonymous`);
  // azure: DefaultAzureCredential (az login, environment, workload identity, managed identity), then the ACR exchange
  const targetAuth: TargetAuth = asked === 'azure' ? 'managed-identity' : (asked as TargetAuth);
  if (targetUser) return { asked, targetAuth, targetCredentials: { username: targetUser, password: targetPassword! } };
  // no flag and no setting names a target credential: what `docker login` (or podman, skopeo…) stored for it
  const fromStore =
    str(values, 'target-auth') === undefined && !env.TARGET_AUTH?.trim() && targetAuth === 'anonymous'
      ? await dockerCredentials(targetHost, env)
      : undefined;
  if (fromStore) return { asked, targetAuth: 'basic', targetCredentials: fromStore };
  if (targetAuth === 'basic' && !loaded.targetUsername) {
    throw new UsageError(
      '--target-auth basic needs --target-username and a password (or TARGET_USERNAME/TARGET_PASSWORD)',
    );
  }
  return { asked, targetAuth };
}

/** `--include-referrers` and its `--referrer-type`s (media types, as the request schema checks them). */
function referrerOptions(v: Values): Pick<ImportRequest, 'includeReferrers' | 'referrerTypes'> {
  const types = list(v, 'referrer-type');
  if (types && !flag(v, 'include-referrers'))
    throw new UsageError(
      '--referrer-type selects which referrers --include-referrers copies: give --include-referrers too',
    );
  const bad = types?.find((t) => !MEDIA_TYPE.test(t));
  if (bad !== undefined)
    throw new UsageError(
      `--referrer-type "${bad}" is not a media type (e.g. application/vnd.dev.cosign.artifact.sig.v1+json)`,
    );
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
  io.stderr.write(
    `oci-import: warning: ${option} on the command line is visible to other users of this machine (ps); use ${option === '--password' ? '--password-stdin or ' : ''}$${variable} instead\n`,
  );
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks).toString('utf8');
}
