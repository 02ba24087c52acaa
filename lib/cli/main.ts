/**
 * `oci-import`: the same engine the functions run, in one process, with a progress line.
 * Exit codes: 0 imported, 1 the import failed, 2 the command line is wrong.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, splitList } from '../config.js';
import { isResourceId } from '../azure/arm.js';
import { azureSettings, entraTokenCredentials, registryResolver, sourceAuth, targetIdentityAuth, withRegistryAuth } from '../azure/clients.js';
import type { Authenticator, Credentials } from '../oci/auth.js';
import { errorCode } from '../oci/errors.js';
import { formatReference, normalizeRegistry, parseReference, validateRegistry } from '../oci/reference.js';
import { RegistryClient } from '../oci/registry.js';
import { ImportEngine, runImport } from '../engine/engine.js';
import type { BlobState, ImportRequest } from '../engine/types.js';
import { Progress } from './progress.js';

export interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly env: Record<string, string | undefined>;
}

export const USAGE = `oci-import — copy images and OCI artifacts between registries, without Docker

Usage:
  oci-import import --source REF [--target HOST] [--image REPO:TAG]... [options]
  oci-import sync --rules FILE [--target HOST] [--dry-run] [options]

Import options:
  --source REF               image to copy: docker.io/library/nginx:1.27, host:5000/app@sha256:…
  --target HOST              target registry (default: $TARGET_REGISTRY)
  --image REPO:TAG           target name; repeat for several tags (default: the source's own name)
  --repository REPO          import by digest into REPO without a tag
  --force                    move target tags that already point elsewhere
  --platform OS/ARCH         only this platform of a multi-platform image; repeatable
  --registry R               source registry: login server, or ARM resource ID of an Azure Container
                             Registry (/subscriptions/…/registries/NAME: resolved and pulled with the
                             managed identity); --source may then omit the host
  --username U --password P  source registry credentials; --password alone is an Entra ID access token
                             (e.g. of another tenant), exchanged at the registry (ACR only)
  --target-username U --target-password P
                             target registry credentials (default: $TARGET_USERNAME/$TARGET_PASSWORD)
  --target-auth MODE         managed-identity (Entra ID → ACR token exchange), basic or anonymous
                             (default: $TARGET_AUTH, else basic with target credentials, else anonymous)
  --insecure HOST            use plain HTTP for HOST (repeatable; also $INSECURE_REGISTRIES)
  --json                     print the result as JSON on stdout
  -h, --help                 show this help

Sync options (one pass over the rules: what differs from the source is imported, by HEAD comparison):
  --rules FILE               JSON sync rules (see README); named credentials from REGISTRY_CREDENTIALS__<name>__*
  --dry-run                  print the plan, write nothing
  --target, --target-username, --target-password, --target-auth, --insecure, --json as for import

Environment: CHUNK_SIZE (bytes per PATCH; unset: each blob as one streamed PATCH), BLOB_CONCURRENCY (4),
FETCH_CONCURRENCY (8 ranged GETs per blob), MAX_MANIFESTS (50);
Azure: AZURE_CLIENT_ID (user-assigned identity), ACR_AUDIENCE, ARM_ENDPOINT.
Exit status: 0 imported, 1 import failed, 2 usage error.
`;

class UsageError extends Error {}

function credentialPair(user: string | undefined, pass: string | undefined, what: string): Credentials | undefined {
  if (user === undefined && pass === undefined) return undefined;
  if (!user || pass === undefined) throw new UsageError(`${what}: give both the username and the password`);
  return { username: user, password: pass };
}

/** Replaces every secret we were given by *** in a text bound for the terminal. */
function redactor(secrets: readonly (string | undefined)[]): (text: string) => string {
  const list = secrets.filter((s): s is string => !!s && s.length >= 3);
  return (text) => list.reduce((t, s) => t.split(s).join('***'), text);
}

export async function main(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    (command ? io.stdout : io.stderr).write(USAGE);
    return command ? 0 : 2;
  }
  if (command !== 'import' && command !== 'sync') {
    io.stderr.write(`oci-import: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  let redact = (t: string): string => t;
  try {
    const { values } = parseArgs({
      args: [...rest],
      strict: true,
      allowPositionals: false,
      options: {
        target: { type: 'string' }, 'target-username': { type: 'string' }, 'target-password': { type: 'string' },
        'target-auth': { type: 'string' },
        insecure: { type: 'string', multiple: true }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        ...(command === 'import' ? {
          source: { type: 'string' }, image: { type: 'string', multiple: true }, repository: { type: 'string' },
          force: { type: 'boolean' }, platform: { type: 'string', multiple: true },
          username: { type: 'string' }, password: { type: 'string' }, registry: { type: 'string' },
        } : {
          rules: { type: 'string' }, 'dry-run': { type: 'boolean' },
        }),
      },
    }) as { values: Record<string, string | boolean | string[] | undefined> & {
      target?: string; 'target-username'?: string; 'target-password'?: string; 'target-auth'?: string; insecure?: string[]; json?: boolean; help?: boolean;
      registry?: string;
      source?: string; image?: string[]; repository?: string; force?: boolean; platform?: string[]; username?: string; password?: string;
      rules?: string; 'dry-run'?: boolean;
    } };
    redact = redactor([values.password, values['target-password'], io.env.TARGET_PASSWORD]);
    if (values.help) {
      io.stdout.write(USAGE);
      return 0;
    }
    // Unlike the service, whose steps end and resume, one CLI process streams each blob as one PATCH
    // (as `docker push` does) unless CHUNK_SIZE asks for chunks.
    const loaded = loadConfig(io.env);
    const config = { ...loaded, chunkSize: io.env.CHUNK_SIZE?.trim() ? loaded.chunkSize : Infinity };
    const targetHost = values.target ?? config.targetRegistry;
    if (command === 'import' && !values.source) throw new UsageError('--source is required');
    if (command === 'sync' && !values.rules) throw new UsageError('--rules is required');
    if (!targetHost) throw new UsageError('--target is required (or set TARGET_REGISTRY)');
    validateRegistry(targetHost);
    const target = normalizeRegistry(targetHost);
    const insecure = new Set([...config.insecureRegistries, ...splitList((values.insecure ?? []).join(','))].map(normalizeRegistry));
    const targetCreds = credentialPair(values['target-username'], values['target-password'], '--target-username/--target-password')
      ?? (config.targetUsername ? { username: config.targetUsername, password: config.targetPassword! } : undefined);
    const targetAuth = values['target-auth'] ?? (values['target-username'] ? 'basic' : config.targetAuth);
    if (!['managed-identity', 'basic', 'anonymous'].includes(targetAuth)) throw new UsageError(`--target-auth "${targetAuth}" is not one of managed-identity, basic, anonymous`);
    if (targetAuth === 'basic' && !targetCreds) throw new UsageError('--target-auth basic needs --target-username and --target-password (or TARGET_USERNAME/TARGET_PASSWORD)');
    const azure = azureSettings(config);
    const targetClient = targetAuth === 'managed-identity'
      ? withRegistryAuth(targetIdentityAuth(azure, target, insecure.has(target)),
        (authenticator?: Authenticator) => new RegistryClient({ registry: target, insecure: insecure.has(target), authenticator }))
      : new RegistryClient({ registry: target, insecure: insecure.has(target), credentials: targetAuth === 'basic' ? targetCreds : undefined });
    if (command === 'sync') {
      // loaded only for this command: the rules schema and tag selection cost start-up time
      const { runSync } = await import('./sync-command.js');
      return await runSync({
        rulesFile: values.rules!, dryRun: values['dry-run'] ?? false, json: values.json ?? false, config, env: io.env,
        target, targetClient, insecure, io, redact,
      });
    }
    // --registry: a login server, or an ACR's resource ID resolved through Resource Manager.
    let registry = values.registry;
    let resourceId: string | undefined;
    if (registry !== undefined && isResourceId(registry)) {
      const resolved = await registryResolver(azure)(registry);
      resourceId = resolved.id;
      registry = resolved.loginServer;
    }
    if (registry !== undefined) validateRegistry(registry);
    const source = parseReference(values.source!, registry ? { defaultRegistry: registry } : {});
    if (registry && source.registry !== normalizeRegistry(registry)) {
      throw new UsageError(`--source names registry ${source.registry} but --registry is ${registry}; give the host in one of them only`);
    }
    const sourceCreds = values.username === undefined && values.password !== undefined
      ? entraTokenCredentials(values.password)
      : credentialPair(values.username, values.password, '--username/--password');
    const sourceInsecure = insecure.has(source.registry);

    const req: ImportRequest = {
      source: registry ? formatReference(source) : values.source!, target, images: values.image, repository: values.repository,
      force: values.force ?? false, platforms: values.platform,
    };
    const progress = new Progress(io.stderr, Boolean(io.stderr.isTTY));
    const engine = new ImportEngine({
      source: withRegistryAuth(sourceAuth(azure, { registry: source.registry, insecure: sourceInsecure, credentials: sourceCreds, resourceId }),
        (authenticator?: Authenticator) => new RegistryClient({ registry: source.registry, insecure: sourceInsecure, credentials: sourceCreds, authenticator })),
      target: targetClient,
      chunkSize: config.chunkSize,
      fetchConcurrency: config.fetchConcurrency,
      maxManifests: config.maxManifests,
      events: {
        onBytes: (n) => progress.bytes(n),
        onBlobDone: (s: BlobState) => progress.blobDone(s),
        onNotice: (m) => progress.notice(redact(m)),
      },
    });
    const result = await runImport(engine, req, {
      blobConcurrency: config.blobConcurrency,
      stepMs: config.stepBudgetSeconds * 1000,
      onPlan: (p) => progress.start(p),
    });
    progress.end();
    const names = [...result.tagged, ...result.unchanged].map((n) => `${target}/${n}`);
    if (values.json) {
      io.stdout.write(JSON.stringify({
        source: values.source, target, digest: result.digest, mediaType: result.mediaType,
        tagged: result.tagged, unchanged: result.unchanged, notes: result.plan.notes,
        blobs: result.blobs.map((b) => ({ digest: b.digest, size: b.size, outcome: b.outcome })),
      }, null, 2) + '\n');
    } else {
      const where = names.length ? names.join(', ') : `${target}/${ImportEngine.repositories(result.plan).join(', ')}@${result.digest}`;
      io.stdout.write(`imported ${values.source} → ${where}\ndigest ${result.digest}\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`oci-import: ${redact((err as Error).message)}\nRun "oci-import --help" for usage.\n`);
      return 2;
    }
    if (err instanceof ConfigError || ['INVALID_REFERENCE', 'INVALID_RULES', 'INVALID_RESOURCE_ID'].includes((err as { code?: string }).code ?? '')) {
      io.stderr.write(`oci-import: ${redact((err as Error).message)}\n`);
      return 2;
    }
    io.stderr.write(`\noci-import: import failed [${errorCode(err)}]: ${redact((err as Error).message ?? String(err))}\n`);
    return 1;
  }
}
