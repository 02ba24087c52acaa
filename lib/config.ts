/**
 * Every setting the app reads, in one place: read once from the environment (app settings in Azure,
 * `local.settings.json`/env locally, the shell for the CLI), validated, with named defaults.
 *
 * `SETTINGS` is the catalogue: the README table is generated from it (`npm run docs:settings`), the CLI's
 * "Environment" help too (`settingsHelp`), and the Bicep app settings, the compiled-template test and a scan of
 * every environment variable lib/ reads (test/unit/settings.test.ts) are checked against it, so a setting cannot exist in one
 * place and not in the others. Variables the platform sets (not settings) are in `PLATFORM_VARIABLES`.
 */

import { OciImportError } from './errors.js';

export const MiB = 1024 * 1024;

/** Default chunk (one PATCH of a queue step, streamed from the parts as they arrive: it is never held in
 * memory whole): few enough requests per blob, and under the ~20 MB request bodies ACR takes. */
export const DEFAULT_CHUNK_SIZE = 8 * MiB;
/** ACR refuses indexes with more than 50 manifests in an import; we refuse the same (`az acr import` parity). */
export const DEFAULT_MAX_MANIFESTS = 50;
/** A queue step ends before this many seconds. host.json functionTimeout is 10 min: a step of 2 min plus
 * the last chunk in flight leaves a wide margin (a timed-out invocation restarts the whole worker). */
export const DEFAULT_STEP_BUDGET_SECONDS = 120;
/** Unique blobs copied at once across all platforms of an import. */
export const DEFAULT_BLOB_CONCURRENCY = 4;
/** Concurrent ranged GETs (of 4 MiB parts) feeding one blob's in-order upload: one connection is capped
 * by distance (25 MB/s at 20 ms in the benchmark), 8 of them keep ahead of a registry's intake. All
 * blobs of an import (or of a worker process) together hold at most twice this many parts, so buffers
 * stay near 2 × 8 × 4 MiB plus the two parts each upload has on the wire. */
export const DEFAULT_FETCH_CONCURRENCY = 8;
/** Blob bytes one process holds at most while copying, over all blobs at once (parts fetched ahead and
 * the blocks each upload is sending; each upload may go beyond by the two blocks it sends and fills):
 * with Node.js itself this keeps a copy under 96 MB of RSS, and still leaves room for every part a far
 * source has in flight (docs/benchmarks.md). */
export const DEFAULT_COPY_MEMORY = 16 * MiB;
/** Unique blobs per import: the largest real images have a few hundred layers over all platforms
 * (docs/limits.md); a thousand leaves room and bounds one import to a thousand blob steps. */
export const DEFAULT_MAX_BLOBS = 1000;
/** Bytes per import (sum of unique blob sizes): beyond the biggest CUDA/ML images, below a runaway bill. */
export const DEFAULT_MAX_IMPORT_BYTES = 100 * 1024 * MiB;
/** Imports up to this many bytes (and 16 blobs) are copied in their plan step instead of one step per blob. */
export const DEFAULT_INLINE_IMPORT_BYTES = 16 * MiB;
/** Tags listed per repository by a sync pass. */
export const DEFAULT_MAX_TAGS = 10_000;
/** Tags a sync pass compares (and imports, in the CLI) at once, over all rules. */
export const DEFAULT_SYNC_CONCURRENCY = 8;
/** A sync pass lists and compares for at most this long: half of host.json's functionTimeout of 10 minutes. */
export const DEFAULT_SYNC_PASS_SECONDS = 300;
/** No answer headers or body bytes for this long ends a request. */
export const DEFAULT_REQUEST_TIMEOUT_SECONDS = 30;
/** Bodies slower than this (averaged over 30 s) end: a trickle must not hold a worker. */
export const DEFAULT_MIN_BYTES_PER_SECOND = 64 * 1024;
/** A registry's Retry-After up to this long re-enqueues the step with that delay; longer fails the job. */
export const DEFAULT_MAX_RETRY_AFTER_SECONDS = 3600;
/** A job still unfinished after this long fails with JOB_EXPIRED. */
export const DEFAULT_MAX_JOB_HOURS = 24;
export const DEFAULT_JOB_RETENTION_DAYS = 30;
/** Entra ID audience of ACR data-plane tokens in the public cloud. */
export const DEFAULT_ACR_AUDIENCE = 'https://containerregistry.azure.net';
/** Entra ID authority of the public cloud. */
export const DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com';
/** Azure Resource Manager of the public cloud. */
export const DEFAULT_ARM_ENDPOINT = 'https://management.azure.com';

export interface SettingSpec {
  readonly name: string;
  readonly description: string;
  /** The default as a user would write it; absent when the setting is optional with no default. */
  readonly default?: string;
  /** Holds a secret: never logged, set from Key Vault in Azure. */
  readonly secret?: boolean;
  /** Where it matters: every deployment ('app'), or only for the local/CLI run ('local'). */
  readonly scope: 'app' | 'local';
  /** A family of settings (`<name>` stands for a user-chosen part): not one app setting. */
  readonly pattern?: boolean;
  /** Read by the CLI as well: listed in its help ("Environment"). */
  readonly cli?: boolean;
  /**
   * Who sets it in Azure when the template does not pass it as one of the app's own settings: `platform` (the
   * template's Application Insights wiring), `operator` (an optional addition, e.g. an OTLP collector).
   */
  readonly setBy?: 'platform' | 'operator';
}

export const SETTINGS: readonly SettingSpec[] = [
  {
    name: 'AzureWebJobsStorage',
    scope: 'app',
    default: 'UseDevelopmentStorage=true',
    description:
      'Storage for the job records and the import queue (in Azure identity-based: `__blobServiceUri`, `__queueServiceUri`, `__tableServiceUri`, `__credential`, `__clientId`).',
  },
  {
    name: 'TARGET_REGISTRY',
    scope: 'app',
    description: 'Login server imports go to when a request names no `target`, e.g. `myregistry.azurecr.io`.',
  },
  {
    name: 'TARGET_AUTH',
    scope: 'app',
    default:
      'basic when TARGET_USERNAME is set; managed-identity for an Azure Container Registry target when the app runs in Azure; else anonymous',
    description:
      "How the app signs in to the target: `managed-identity` (Entra ID token exchanged at the registry's /oauth2/exchange; the identity needs AcrPush), `basic` or `anonymous`.",
  },
  {
    name: 'TARGET_USERNAME',
    scope: 'app',
    description: 'Username for a non-Azure target registry (basic or token auth).',
  },
  {
    name: 'TARGET_PASSWORD',
    scope: 'app',
    secret: true,
    description: 'Password or token for a non-Azure target registry.',
  },
  {
    name: 'AZURE_CLIENT_ID',
    scope: 'app',
    cli: true,
    description:
      'Client ID of the user-assigned managed identity used for Azure registries (absent: the system-assigned identity).',
  },
  {
    name: 'ACR_AUDIENCE',
    scope: 'app',
    cli: true,
    default: DEFAULT_ACR_AUDIENCE,
    description:
      "Entra ID audience of the tokens exchanged at Azure Container Registries (sovereign clouds: that cloud's ACR audience, or its Resource Manager audience, which ACR also accepts unless authentication-as-arm is disabled).",
  },
  {
    name: 'ARM_ENDPOINT',
    scope: 'app',
    cli: true,
    default: DEFAULT_ARM_ENDPOINT,
    description:
      'Azure Resource Manager endpoint that resolves registries given by resource ID (sovereign clouds: e.g. `https://management.usgovcloudapi.net`); its tokens are requested for `<endpoint>/.default`.',
  },
  {
    name: 'IMPORT_QUEUE',
    scope: 'app',
    default: 'imports',
    description: 'Storage queue carrying import requests and steps; `<name>-poison` receives failed messages.',
  },
  {
    name: 'CHUNK_SIZE',
    scope: 'app',
    cli: true,
    description:
      'Bytes per upload PATCH (`MiB`/`KiB` suffixes). Not set: the CLI streams each blob as one PATCH (as `docker push`), and a queue step streams a new upload session as one PATCH until the blob is done or its budget is spent, then saves its place; a later step goes on in 8 MiB PATCHes, saving its place after each. Set it for a registry that refuses a streamed PATCH.',
  },
  {
    name: 'STEP_BUDGET_SECONDS',
    scope: 'app',
    default: String(DEFAULT_STEP_BUDGET_SECONDS),
    description: 'A queue step stops copying after this long, saves its place and re-enqueues the rest.',
  },
  {
    name: 'MAX_MANIFESTS',
    scope: 'app',
    cli: true,
    default: String(DEFAULT_MAX_MANIFESTS),
    description: 'Largest index (number of child manifests) an import accepts (`TOO_MANY_MANIFESTS`).',
  },
  {
    name: 'MAX_BLOBS',
    scope: 'app',
    cli: true,
    default: String(DEFAULT_MAX_BLOBS),
    description: 'Unique blobs one import may copy, over all platforms (`TOO_MANY_BLOBS`, refused when planned).',
  },
  {
    name: 'MAX_IMPORT_BYTES',
    scope: 'app',
    cli: true,
    default: '100GiB',
    description:
      "Sum of the sizes of one import's unique blobs (`IMPORT_TOO_LARGE`, refused when planned; `KiB`/`MiB`/`GiB` suffixes).",
  },
  {
    name: 'INLINE_IMPORT_BYTES',
    scope: 'app',
    default: '16MiB',
    description:
      'An import of at most this many bytes and 16 blobs is copied in its plan step (one queue message instead of one per blob); a larger one copies there up to 16 of its blobs of at most 1 MiB (config blobs, small layers) within this many bytes while its other blobs get blob steps; `0` always fans out every blob.',
  },
  {
    name: 'MAX_TAGS',
    scope: 'app',
    default: String(DEFAULT_MAX_TAGS),
    description: 'Tags a sync rule may list in one source repository (`TOO_MANY_TAGS`).',
  },
  {
    name: 'REQUEST_TIMEOUT_SECONDS',
    scope: 'app',
    cli: true,
    default: String(DEFAULT_REQUEST_TIMEOUT_SECONDS),
    description: 'A registry request without answer headers, or a body without a byte, for this long ends (`TIMEOUT`).',
  },
  {
    name: 'MIN_BYTES_PER_SECOND',
    scope: 'app',
    cli: true,
    default: '64KiB',
    description: 'Slowest body accepted, averaged over 30 s (`TIMEOUT`); also sizes the deadline of an upload body.',
  },
  {
    name: 'MAX_RETRY_AFTER_SECONDS',
    scope: 'app',
    default: String(DEFAULT_MAX_RETRY_AFTER_SECONDS),
    description:
      'Longest `Retry-After` honoured by re-enqueueing the step (status `waiting`); longer fails with `RATE_LIMITED`.',
  },
  {
    name: 'MAX_JOB_HOURS',
    scope: 'app',
    default: String(DEFAULT_MAX_JOB_HOURS),
    description: 'An import not finished after this many hours fails with `JOB_EXPIRED`.',
  },
  {
    name: 'JOB_RETENTION_DAYS',
    scope: 'app',
    default: String(DEFAULT_JOB_RETENTION_DAYS),
    description:
      'Days an ended import (its record, sealed credentials and index entry) is kept after it ended; then `GET /api/imports/{id}` answers 404 `IMPORT_EXPIRED`. Never a running import.',
  },
  {
    name: 'TARGET_REPOSITORIES',
    scope: 'app',
    cli: true,
    default: '*',
    description:
      'Comma list of target repository patterns this deployment may write (`*` matches anything, `/` included: `mirror/*`); others are refused with `REPOSITORY_NOT_ALLOWED`.',
  },
  {
    name: 'BLOB_CONCURRENCY',
    scope: 'app',
    cli: true,
    default: String(DEFAULT_BLOB_CONCURRENCY),
    description: 'Blobs copied at the same time within one import.',
  },
  {
    name: 'FETCH_CONCURRENCY',
    scope: 'app',
    cli: true,
    default: String(DEFAULT_FETCH_CONCURRENCY),
    description: 'Concurrent ranged GETs per blob (all blobs of an import together: twice this).',
  },
  {
    name: 'COPY_MEMORY',
    scope: 'app',
    default: '16MiB',
    description:
      'Blob bytes a process holds at most while copying, over all blobs at once (`MiB` suffix): parts fetched ahead and the blocks being sent; each upload may go beyond by the two 1 MiB blocks it sends and fills. With the default a CLI copy of 300 MB peaked at 83–92 MB of RSS (docs/benchmarks.md). Lower it to bound memory further, at the cost of bytes fetched ahead from a far source: in an earlier measurement `4MiB` made a far-away multi-platform copy 44 % slower.',
  },
  {
    name: 'ALLOWED_SOURCES',
    scope: 'app',
    default: '*',
    description:
      'Comma list of `host[:port]` patterns (`*.example.com`) sources may use. Private, loopback and link-local hosts must be listed explicitly.',
  },
  {
    name: 'PRIVATE_SOURCE_REGISTRIES',
    scope: 'app',
    description:
      'Comma list of ARM resource IDs of source registries reached through a private endpoint (virtual network integration): a request naming one of them by resource ID may reach its login server and `<name>.<region>.data.azurecr.io` data endpoints at private addresses (10/8, 172.16/12, 192.168/16, 100.64/10; never loopback, link-local or 168.63.129.16). The template sets it from `sourceRegistries[].privateEndpoint` when `virtualNetworkSubnetId` is set.',
  },
  {
    name: 'INSECURE_REGISTRIES',
    scope: 'app',
    description: 'Comma list of `host[:port]` reached over plain HTTP (test registries such as `127.0.0.1:5000`).',
  },
  {
    name: 'CREDENTIAL_KEY',
    scope: 'app',
    secret: true,
    description:
      'Base64 32-byte key (AES-256-GCM; `openssl rand -base64 32`) that encrypts inline credentials of a request at rest; without it they are refused.',
  },
  {
    name: 'MESSAGE_KEY',
    scope: 'app',
    secret: true,
    description:
      "Base64 32-byte key (HMAC-SHA256) that authenticates the app's own queue step messages and list continuation tokens; required by the service: without it, it queues nothing (`503 MESSAGE_KEY_NOT_SET`), and a step message without its tag is refused (`STEP_NOT_AUTHENTIC`). The local host makes one and keeps it in `.local-host/message-key`; azd makes one in Key Vault.",
  },
  {
    name: 'MESSAGE_KEY_PREVIOUS',
    scope: 'app',
    secret: true,
    description:
      'The key MESSAGE_KEY held before a rotation: messages and tokens made with it are still accepted (nothing new is made with it).',
  },
  {
    name: 'JOBS_CONTAINER',
    scope: 'app',
    default: 'importjobs',
    description: 'Blob container holding job records, plans and blob checkpoints.',
  },
  {
    name: 'SYNC_CONCURRENCY',
    scope: 'app',
    default: String(DEFAULT_SYNC_CONCURRENCY),
    description: 'Tags a sync pass compares (HEADs), enqueues and, in the CLI, imports at once, over all rules.',
  },
  {
    name: 'SYNC_PASS_SECONDS',
    scope: 'app',
    default: String(DEFAULT_SYNC_PASS_SECONDS),
    description:
      'A sync pass lists tags and compares them for at most this long; what it has not reached by then is reported as `TIMEOUT` and left to the next pass.',
  },
  {
    name: 'SYNC_SCHEDULE',
    scope: 'app',
    default: '0 0 * * * *',
    description: 'NCRONTAB schedule (UTC) of the sync timer.',
  },
  { name: 'SYNC_RULES', scope: 'app', description: 'Sync rules as inline JSON.' },
  {
    name: 'REGISTRY_CREDENTIALS__<name>__USERNAME',
    scope: 'app',
    pattern: true,
    description: 'Username of the named source credential `<name>` (requests refer to it as `"credential": "<name>"`).',
  },
  {
    name: 'REGISTRY_CREDENTIALS__<name>__PASSWORD',
    scope: 'app',
    pattern: true,
    secret: true,
    description: 'Password or token of the named source credential `<name>`.',
  },
  {
    name: 'REGISTRY_CREDENTIALS__<name>__REGISTRIES',
    scope: 'app',
    pattern: true,
    description:
      'Required with a named credential: comma list of host patterns (as `ALLOWED_SOURCES`) it may be sent to — registries and their token endpoints (Docker Hub: `docker.io,auth.docker.io`); `host:port` names that port only (a token endpoint on another port of the same host must be listed too). A request for another source is refused with `CREDENTIAL_NOT_ALLOWED`.',
  },
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING',
    scope: 'app',
    setBy: 'platform',
    description:
      'Traces and metrics to Application Insights through the Azure Monitor OpenTelemetry distro (the template sets it); with neither this nor OTEL_EXPORTER_OTLP_ENDPOINT no telemetry module is loaded (docs/operations.md).',
  },
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
    scope: 'app',
    setBy: 'platform',
    description:
      'Entra ID sign-in of the telemetry to Application Insights (`Authorization=AAD;ClientId=<identity>`), when its local authentication is off.',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    scope: 'app',
    setBy: 'operator',
    description:
      'Traces and metrics over OTLP/HTTP to this collector (`/v1/traces`, `/v1/metrics` appended); OTEL_EXPORTER_OTLP_TRACES_ENDPOINT names the traces URL whole.',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
    scope: 'app',
    setBy: 'operator',
    description: 'The OTLP traces URL, whole (instead of OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`).',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_PROTOCOL',
    scope: 'app',
    setBy: 'operator',
    default: 'http/json',
    description: 'OTLP encoding: `http/json`, the one supported here (another is reported at start and JSON sent).',
  },
  {
    name: 'OTEL_SERVICE_NAME',
    scope: 'app',
    setBy: 'operator',
    default: 'oci-import',
    description: 'The `service.name` of the traces and metrics.',
  },
  {
    name: 'OTEL_METRIC_EXPORT_INTERVAL',
    scope: 'app',
    setBy: 'operator',
    default: '60000',
    description:
      "Milliseconds between metric exports (the OpenTelemetry SDK's setting; also OTEL_BSP_SCHEDULE_DELAY for spans).",
  },
  {
    name: 'AUTH_MODE',
    scope: 'app',
    default: 'keys',
    description:
      'Who may call the HTTP functions: `keys` (function keys, checked by the Functions host) or `entra` (only `Authorization: Bearer` Entra ID tokens for ENTRA_AUDIENCE, checked by the app; app roles `Imports.Read` and `Imports.Write`; the functions are then registered anonymous, so function keys open nothing).',
  },
  {
    name: 'ENTRA_TENANT_ID',
    scope: 'app',
    description:
      'With AUTH_MODE=entra, required: the directory (tenant) ID whose tokens are accepted (issuer `<ENTRA_AUTHORITY_HOST>/<tenant>/v2.0` or `https://sts.windows.net/<tenant>/`).',
  },
  {
    name: 'ENTRA_AUDIENCE',
    scope: 'app',
    description:
      "With AUTH_MODE=entra, required: comma list of the audiences accepted, the API app registration's application ID URI (`api://…`, v1 tokens) and/or its client ID (v2 tokens).",
  },
  {
    name: 'ENTRA_AUTHORITY_HOST',
    scope: 'app',
    default: DEFAULT_AUTHORITY_HOST,
    description:
      'Entra ID authority the tokens come from; its `/<tenant>/v2.0/.well-known/openid-configuration` names the signing keys (sovereign clouds: e.g. `https://login.microsoftonline.us`).',
  },
  {
    name: 'OCI_IMPORT_SCOPE',
    scope: 'local',
    description:
      'CLI with `--endpoint`: sign in to a service with AUTH_MODE=entra with an Entra ID token for this scope (`api://<app>/.default`) from DefaultAzureCredential, instead of a function key (as `--scope`).',
  },
  {
    name: 'DOCKER_CONFIG',
    scope: 'local',
    description:
      "The CLI: the folder of Docker's config.json (default `~/.docker`), read for registry credentials when no flag names one (auths, credHelpers, credsStore).",
  },
  {
    name: 'REGISTRY_AUTH_FILE',
    scope: 'local',
    description:
      "The CLI: the containers auth.json (skopeo, podman) read for registry credentials after Docker's config.",
  },
  {
    name: 'XDG_RUNTIME_DIR',
    scope: 'local',
    description:
      'The CLI: `$XDG_RUNTIME_DIR/containers/auth.json` is read for registry credentials when REGISTRY_AUTH_FILE is unset.',
  },
  {
    name: 'HOME',
    scope: 'local',
    description: 'The CLI: `~/.docker/config.json` is found under it when DOCKER_CONFIG is unset.',
  },
  {
    name: 'SYNC_RULES_FILE',
    scope: 'local',
    description: 'Path of a JSON file with sync rules (instead of SYNC_RULES).',
  },
  {
    name: 'OCI_IMPORT_ENDPOINT',
    scope: 'local',
    cli: true,
    description: 'The CLI: API base URL of a deployed service (as `--endpoint`).',
  },
  {
    name: 'OCI_IMPORT_KEY',
    scope: 'local',
    cli: true,
    secret: true,
    description: 'The CLI: function key of the deployed service (as `--key`, without showing it in the process list).',
  },
  {
    name: 'OCI_IMPORT_PASSWORD',
    scope: 'local',
    cli: true,
    secret: true,
    description: 'The CLI: password or token of the source registry (as `--password`).',
  },
  {
    name: 'OCI_IMPORT_TARGET_PASSWORD',
    scope: 'local',
    cli: true,
    secret: true,
    description: 'The CLI: password or token of the target registry (before TARGET_PASSWORD).',
  },
  {
    name: 'LOCAL_HOST_QUEUE_LEASE_SECONDS',
    scope: 'local',
    description:
      "The local host: how long a dequeued message stays invisible (tests shorten it; the default is the queue trigger's).",
  },
];

/**
 * Variables the platform sets, read but never configured: not settings, so not in the README table or the template.
 */
export const PLATFORM_VARIABLES: readonly { readonly name: string; readonly why: string }[] = [
  { name: 'WEBSITE_SITE_NAME', why: 'set by App Service / Functions: tells the app it runs in Azure' },
  { name: 'IDENTITY_ENDPOINT', why: 'set by App Service when a managed identity is available' },
];

/** The CLI's "Environment" help: the settings it reads, with their defaults, wrapped at `width` columns. */
export function settingsHelp(width = 110): string {
  const items = SETTINGS.filter((s) => s.cli).map((s) =>
    s.default && s.default.length <= 12 ? `${s.name} (${s.default})` : s.name,
  );
  const lines: string[] = [];
  let line = 'Environment (README "Settings"):';
  for (const item of items) {
    if (line.length + item.length + 2 > width) {
      lines.push(`${line},`);
      line = item;
    } else line = line.endsWith(':') ? `${line} ${item}` : `${line}, ${item}`;
  }
  lines.push(`${line}.`);
  return lines.join('\n');
}

export class ConfigError extends OciImportError {
  override name = 'ConfigError';
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super('INVALID_SETTING', `setting ${setting}: ${message}`, { side: 'config' });
  }
}

/** A named source credential of the deployment, bound to the registries it may be sent to. */
export interface NamedCredential {
  readonly name: string;
  readonly username: string;
  readonly password: string;
  /** Host patterns (`REGISTRY_CREDENTIALS__<name>__REGISTRIES`), as ALLOWED_SOURCES. */
  readonly registries: readonly string[];
}

/**
 * What a setting still holds when the platform could not resolve its Key Vault reference: the reference value
 * itself is used instead (https://learn.microsoft.com/azure/app-service/app-service-key-vault-references,
 * Troubleshooting). Typical on a first start while a new role assignment propagates.
 */
export const KEY_VAULT_REFERENCE_PREFIX = '@Microsoft.KeyVault(';

export function isKeyVaultReference(value: string | undefined): boolean {
  return value !== undefined && value.trimStart().startsWith(KEY_VAULT_REFERENCE_PREFIX);
}

/**
 * A setting is an unresolved Key Vault reference. Temporary: the invocation fails and is retried (a queue
 * message by the host, an HTTP call by its client on 503) instead of failing a job with a wrong secret. The
 * message shows the reference (a vault and secret name, no secret) and what to check.
 */
export class KeyVaultReferenceError extends ConfigError {
  override readonly name = 'KeyVaultReferenceError';
  override readonly code = 'KEY_VAULT_REFERENCE_UNRESOLVED';
  override readonly temporary = true;
  constructor(setting: string, value: string) {
    const reference = value.trim().replace(/\s+/g, ' ');
    const shown = reference.length > 300 ? `${reference.slice(0, 300)}…` : reference;
    super(
      setting,
      `holds a Key Vault reference the platform has not resolved: ${shown}. Check that the app's Key Vault ` +
        'reference identity (keyVaultReferenceIdentity) holds the Key Vault Secrets User role on the vault (a new role ' +
        'assignment can take minutes to apply), that the secret exists and that the reference syntax is right; the ' +
        "platform reports why per setting: the portal (the setting's Key Vault reference status among the app's " +
        'environment variables) or `az rest --method get --url <app resource ID>/config/configreferences/appsettings?api-version=2025-03-01`; ' +
        '`az functionapp config appsettings list` shows the setting as the app received it. Once fixed, any change of the ' +
        "app's configuration makes the platform read its references again. This invocation is retried",
    );
  }
}

/** Throws KeyVaultReferenceError when a setting still holds its Key Vault reference. */
export function requireResolved(setting: string, value: string | undefined): void {
  if (isKeyVaultReference(value)) throw new KeyVaultReferenceError(setting, value!);
}

export type TargetAuth = 'basic' | 'anonymous' | 'managed-identity';

/** How callers of the HTTP functions are checked (AUTH_MODE and the ENTRA_* settings). */
export type CallerAuth =
  | { readonly mode: 'keys' }
  | {
      readonly mode: 'entra';
      readonly tenantId: string;
      readonly audiences: readonly string[];
      readonly authorityHost: string;
    };

/** AUTH_MODE with its ENTRA_* settings, validated: entra mode without its tenant or audience is a ConfigError. */
export function callerAuthOf(env: Env): CallerAuth {
  const mode = env.AUTH_MODE?.trim().toLowerCase() || 'keys';
  if (mode === 'keys') return { mode };
  if (mode !== 'entra') throw new ConfigError('AUTH_MODE', `"${env.AUTH_MODE}" is not one of keys, entra`);
  const tenantId = env.ENTRA_TENANT_ID?.trim().toLowerCase() ?? '';
  if (!tenantId)
    throw new ConfigError(
      'ENTRA_TENANT_ID',
      "is required with AUTH_MODE=entra: the directory (tenant) ID of the API's app registration",
    );
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(tenantId)) {
    throw new ConfigError(
      'ENTRA_TENANT_ID',
      `"${tenantId.slice(0, 64)}" is not a tenant ID (a GUID, as tokens name it in their issuer)`,
    );
  }
  const audiences = (env.ENTRA_AUDIENCE ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  if (audiences.length === 0)
    throw new ConfigError(
      'ENTRA_AUDIENCE',
      "is required with AUTH_MODE=entra: the API's application ID URI (api://…) and/or client ID",
    );
  return { mode, tenantId, audiences, authorityHost: endpointUrl(env, 'ENTRA_AUTHORITY_HOST', DEFAULT_AUTHORITY_HOST) };
}

export interface Config {
  readonly targetRegistry?: string;
  readonly targetAuth: TargetAuth;
  readonly targetUsername?: string;
  readonly targetPassword?: string;
  readonly importQueue: string;
  readonly jobsContainer: string;
  /** 32-byte key for inline credentials at rest; absent → inline credentials are refused. */
  readonly credentialKey?: Buffer;
  /** MESSAGE_KEY (signs and verifies) and MESSAGE_KEY_PREVIOUS (verifies only); absent → the service refuses to queue. */
  readonly messageKeys?: MessageKeys;
  readonly chunkSize: number;
  /**
   * CHUNK_SIZE not set: a queue step streams the first write of an upload session as one PATCH (as `docker push`),
   * ended when the step's budget is spent; only a session an earlier step began goes on in CHUNK_SIZE PATCHes.
   */
  readonly streamUploads: boolean;
  readonly stepBudgetSeconds: number;
  readonly maxManifests: number;
  readonly maxBlobs: number;
  readonly maxImportBytes: number;
  /** INLINE_IMPORT_BYTES; 0: never copy in the plan step. */
  readonly inlineImportBytes: number;
  readonly maxTags: number;
  readonly syncConcurrency: number;
  readonly syncPassSeconds: number;
  readonly requestTimeoutSeconds: number;
  readonly minBytesPerSecond: number;
  readonly maxRetryAfterSeconds: number;
  readonly maxJobHours: number;
  /** JOB_RETENTION_DAYS: ended imports are deleted this many days after they ended (lib/store/retention.ts). */
  readonly jobRetentionDays: number;
  /** TARGET_REPOSITORIES patterns. */
  readonly targetRepositories: readonly string[];
  /** Named source credentials by lower-case name, each bound to its registries. */
  readonly credentials: ReadonlyMap<string, NamedCredential>;
  readonly blobConcurrency: number;
  readonly fetchConcurrency: number;
  /** COPY_MEMORY: blob bytes held at most while copying (the part pool). */
  readonly copyMemory: number;
  readonly allowedSources: readonly string[];
  /** PRIVATE_SOURCE_REGISTRIES: registry resource IDs allowed to resolve privately (lib/policy/private-sources.ts). */
  readonly privateSourceRegistries: readonly string[];
  readonly insecureRegistries: readonly string[];
  /** AZURE_CLIENT_ID: the user-assigned managed identity; absent → the system-assigned one. */
  readonly azureClientId?: string;
  /** ACR_AUDIENCE, without a trailing slash. */
  readonly acrAudience: string;
  /** ARM_ENDPOINT, without a trailing slash. */
  readonly armEndpoint: string;
  /** AUTH_MODE and ENTRA_*: how HTTP callers are checked. */
  readonly callerAuth: CallerAuth;
  /** Which Entra ID credential signs in to Azure registries: the managed identity (default) or, for the CLI's
   * `--target-auth azure`, DefaultAzureCredential (lib/azure/credentials.ts). Not a setting. */
  readonly azureCredential?: 'managed-identity' | 'default';
}

type Env = Record<string, string | undefined>;

/** Parses `8388608`, `8MiB`, `512KiB`, `8M`, `1GiB`. */
export function parseSize(setting: string, value: string): number {
  const m = /^\s*(\d+)\s*(|b|k|kb|kib|m|mb|mib|g|gb|gib)\s*$/i.exec(value);
  if (!m) throw new ConfigError(setting, `"${value}" is not a size; write bytes or a number with KiB/MiB/GiB`);
  const unit = (m[2] ?? '').toLowerCase();
  const mult = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? MiB : unit.startsWith('g') ? 1024 * MiB : 1;
  return Number(m[1]) * mult;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `"${raw}" is not a whole number`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `${n} is out of range ${min}..${max}`);
  return n;
}

function parseKey(raw: string | undefined, setting = 'CREDENTIAL_KEY'): Buffer | undefined {
  if (!raw?.trim()) return undefined;
  const key = Buffer.from(raw.trim(), 'base64');
  if (key.length !== 32)
    throw new ConfigError(
      setting,
      `must be 32 bytes in base64 (got ${key.length} bytes); make one with: openssl rand -base64 32`,
    );
  return key;
}

/** The keys of the app's own queue messages and list tokens: one that signs, and the one before a rotation. */
export interface MessageKeys {
  readonly current: Buffer;
  readonly previous?: Buffer;
}

/** MESSAGE_KEY and MESSAGE_KEY_PREVIOUS, read (and their Key Vault references checked) when first used. */
function messageKeysOf(env: Env): () => MessageKeys | undefined {
  const current = env.MESSAGE_KEY;
  const previous = env.MESSAGE_KEY_PREVIOUS;
  const parsed = {
    current: isKeyVaultReference(current) ? undefined : parseKey(current, 'MESSAGE_KEY'),
    previous: isKeyVaultReference(previous) ? undefined : parseKey(previous, 'MESSAGE_KEY_PREVIOUS'),
  };
  if (!parsed.current && parsed.previous)
    throw new ConfigError('MESSAGE_KEY', 'is not set, but MESSAGE_KEY_PREVIOUS is: the app signs with MESSAGE_KEY');
  return () => {
    requireResolved('MESSAGE_KEY', current);
    requireResolved('MESSAGE_KEY_PREVIOUS', previous);
    return parsed.current
      ? { current: parsed.current, ...(parsed.previous ? { previous: parsed.previous } : {}) }
      : undefined;
  };
}

const CREDENTIAL_SETTING = /^REGISTRY_CREDENTIALS__(.+)__(USERNAME|PASSWORD|REGISTRIES)$/i;

/**
 * Named registry credentials: `REGISTRY_CREDENTIALS__<name>__USERNAME`, `__PASSWORD` (Key Vault references
 * in Azure) and `__REGISTRIES` (required: where they may be sent). Names are case-insensitive.
 */
export function loadCredentials(env: Env): Map<string, NamedCredential> {
  const parts = new Map<string, { name: string; username?: string; password?: string; registries?: string }>();
  for (const [key, value] of Object.entries(env)) {
    const m = CREDENTIAL_SETTING.exec(key);
    if (!m || value === undefined) continue;
    const name = m[1]!;
    const entry = parts.get(name.toLowerCase()) ?? { name };
    const field = m[2]!.toUpperCase();
    if (field === 'USERNAME') entry.username = value;
    else if (field === 'PASSWORD') entry.password = value;
    else entry.registries = value;
    if (field !== 'PASSWORD') requireResolved(key, value);
    parts.set(name.toLowerCase(), entry);
  }
  const out = new Map<string, NamedCredential>();
  for (const [key, e] of parts) {
    const prefix = `REGISTRY_CREDENTIALS__${e.name}__`;
    if (e.username === undefined || e.password === undefined) {
      throw new ConfigError(
        `${prefix}${e.username === undefined ? 'USERNAME' : 'PASSWORD'}`,
        `the credential "${e.name}" needs both ${prefix}USERNAME and ${prefix}PASSWORD`,
      );
    }
    const registries = splitList(e.registries);
    if (registries.length === 0) {
      throw new ConfigError(
        `${prefix}REGISTRIES`,
        `is required: the comma list of registry host patterns the credential "${e.name}" may be sent to (e.g. docker.io,auth.docker.io); it is sent nowhere else`,
      );
    }
    if (registries.includes('*')) {
      throw new ConfigError(
        `${prefix}REGISTRIES`,
        `"*" would send the credential "${e.name}" to any registry a caller names; list its registries`,
      );
    }
    const password = e.password;
    const setting = `${prefix}PASSWORD`;
    // a Key Vault reference not resolved yet holds up only the imports that use this credential
    out.set(key, {
      name: e.name,
      username: e.username,
      registries,
      get password() {
        requireResolved(setting, password);
        return password;
      },
    });
  }
  return out;
}

/** Login-server suffixes of Azure Container Registry in the public and sovereign clouds. */
const ACR_SUFFIXES = ['.azurecr.io', '.azurecr.us', '.azurecr.cn'];

export function isAzureRegistry(host: string | undefined): boolean {
  const h = host?.trim().toLowerCase() ?? '';
  return ACR_SUFFIXES.some((s) => h.endsWith(s));
}

/** App Service / Functions set these in every instance (IDENTITY_ENDPOINT once an identity is assigned). */
function runsInAzure(env: Env): boolean {
  return Boolean(env.IDENTITY_ENDPOINT || env.WEBSITE_SITE_NAME);
}

/** An https URL (plain http only for a loopback host: local test endpoints), without a trailing slash. */
function endpointUrl(env: Env, name: string, fallback: string): string {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `"${raw}" is not a URL; expected e.g. ${fallback}`);
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new ConfigError(name, `"${raw}" must be an https URL`);
  }
  if (url.search || url.hash || url.username)
    throw new ConfigError(name, `"${raw}" must be a plain URL without query, fragment or user`);
  return raw.replace(/\/+$/, '');
}

export function splitList(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

function sizeSetting(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  const n = raw ? parseSize(name, raw) : fallback;
  if (n < min || n > max) throw new ConfigError(name, `${n} bytes is out of range ${min}..${max}`);
  return n;
}

function targetAuthOf(env: Env): Pick<Config, 'targetAuth' | 'targetUsername' | 'targetPassword'> {
  const username = env.TARGET_USERNAME?.trim() || undefined;
  const password = env.TARGET_PASSWORD || undefined;
  if ((username === undefined) !== (password === undefined)) {
    throw new ConfigError(
      username ? 'TARGET_PASSWORD' : 'TARGET_USERNAME',
      'TARGET_USERNAME and TARGET_PASSWORD go together',
    );
  }
  const auth = (env.TARGET_AUTH?.trim().toLowerCase() ||
    (username
      ? 'basic'
      : isAzureRegistry(env.TARGET_REGISTRY) && runsInAzure(env)
        ? 'managed-identity'
        : 'anonymous')) as TargetAuth;
  if (!['basic', 'anonymous', 'managed-identity'].includes(auth)) {
    throw new ConfigError('TARGET_AUTH', `"${env.TARGET_AUTH}" is not one of managed-identity, basic, anonymous`);
  }
  if (auth === 'basic' && !username)
    throw new ConfigError('TARGET_USERNAME', 'TARGET_AUTH=basic needs TARGET_USERNAME and TARGET_PASSWORD');
  return { targetAuth: auth, targetUsername: username, targetPassword: password };
}

/**
 * Reads and validates every setting; throws ConfigError naming the first bad one, or KeyVaultReferenceError
 * (temporary) for a setting that still holds its Key Vault reference. The secrets (CREDENTIAL_KEY,
 * TARGET_PASSWORD, the named credentials' passwords) throw it only when read: an import that needs none of
 * them is not held up by them.
 */
export function loadConfig(env: Env = process.env): Config {
  for (const spec of SETTINGS) if (!spec.pattern && !spec.secret) requireResolved(spec.name, env[spec.name]);
  const credentialKeyRaw = env.CREDENTIAL_KEY;
  const credentialKey = isKeyVaultReference(credentialKeyRaw) ? undefined : parseKey(credentialKeyRaw);
  const messageKeys = messageKeysOf(env);
  const target = targetAuthOf(env);
  return {
    targetRegistry: env.TARGET_REGISTRY?.trim() || undefined,
    targetAuth: target.targetAuth,
    targetUsername: target.targetUsername,
    get targetPassword() {
      requireResolved('TARGET_PASSWORD', target.targetPassword);
      return target.targetPassword;
    },
    importQueue: env.IMPORT_QUEUE?.trim() || 'imports',
    jobsContainer: env.JOBS_CONTAINER?.trim() || 'importjobs',
    get credentialKey() {
      requireResolved('CREDENTIAL_KEY', credentialKeyRaw);
      return credentialKey;
    },
    get messageKeys() {
      return messageKeys();
    },
    chunkSize: sizeSetting(env, 'CHUNK_SIZE', DEFAULT_CHUNK_SIZE, 64 * 1024, 512 * MiB),
    streamUploads: !env.CHUNK_SIZE?.trim(),
    stepBudgetSeconds: int(env, 'STEP_BUDGET_SECONDS', DEFAULT_STEP_BUDGET_SECONDS, 1, 3600),
    maxManifests: int(env, 'MAX_MANIFESTS', DEFAULT_MAX_MANIFESTS, 1, 10_000),
    maxBlobs: int(env, 'MAX_BLOBS', DEFAULT_MAX_BLOBS, 1, 100_000),
    maxImportBytes: sizeSetting(env, 'MAX_IMPORT_BYTES', DEFAULT_MAX_IMPORT_BYTES, 1, 16 * 1024 * 1024 * MiB),
    inlineImportBytes: sizeSetting(env, 'INLINE_IMPORT_BYTES', DEFAULT_INLINE_IMPORT_BYTES, 0, 256 * MiB),
    maxTags: int(env, 'MAX_TAGS', DEFAULT_MAX_TAGS, 1, 1_000_000),
    syncConcurrency: int(env, 'SYNC_CONCURRENCY', DEFAULT_SYNC_CONCURRENCY, 1, 64),
    syncPassSeconds: int(env, 'SYNC_PASS_SECONDS', DEFAULT_SYNC_PASS_SECONDS, 1, 3600),
    requestTimeoutSeconds: int(env, 'REQUEST_TIMEOUT_SECONDS', DEFAULT_REQUEST_TIMEOUT_SECONDS, 1, 600),
    minBytesPerSecond: sizeSetting(env, 'MIN_BYTES_PER_SECOND', DEFAULT_MIN_BYTES_PER_SECOND, 1, 1024 * MiB),
    maxRetryAfterSeconds: int(env, 'MAX_RETRY_AFTER_SECONDS', DEFAULT_MAX_RETRY_AFTER_SECONDS, 0, 7 * 24 * 3600),
    maxJobHours: int(env, 'MAX_JOB_HOURS', DEFAULT_MAX_JOB_HOURS, 1, 24 * 30),
    jobRetentionDays: int(env, 'JOB_RETENTION_DAYS', DEFAULT_JOB_RETENTION_DAYS, 1, 3650),
    blobConcurrency: int(env, 'BLOB_CONCURRENCY', DEFAULT_BLOB_CONCURRENCY, 1, 64),
    fetchConcurrency: int(env, 'FETCH_CONCURRENCY', DEFAULT_FETCH_CONCURRENCY, 1, 64),
    copyMemory: sizeSetting(env, 'COPY_MEMORY', DEFAULT_COPY_MEMORY, 1 * MiB, 4096 * MiB),
    allowedSources: splitList(env.ALLOWED_SOURCES ?? '*'),
    privateSourceRegistries: splitList(env.PRIVATE_SOURCE_REGISTRIES),
    insecureRegistries: splitList(env.INSECURE_REGISTRIES),
    targetRepositories: (env.TARGET_REPOSITORIES?.trim() || '*')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean),
    credentials: loadCredentials(env),
    azureClientId: env.AZURE_CLIENT_ID?.trim() || undefined,
    acrAudience: endpointUrl(env, 'ACR_AUDIENCE', DEFAULT_ACR_AUDIENCE),
    armEndpoint: endpointUrl(env, 'ARM_ENDPOINT', DEFAULT_ARM_ENDPOINT),
    callerAuth: callerAuthOf(env),
  };
}
