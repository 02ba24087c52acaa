/**
 * Every error code oci-import gives — in an HTTP answer's `error.code` and `x-ms-error-code`, a job's `error.code`,
 * a sync report, the CLI's exit message — once, with what it means. `OciImportError`'s code is typed as these
 * codes (lib/errors.ts), the OpenAPI document's `error.code` enums are read from `answers` (lib/api/openapi.ts),
 * and docs/errors.md's table is checked against this one (test/unit/error-codes.test.ts): a code added here
 * without its documentation line fails that test. This module depends on nothing.
 *
 * - `side`: whose problem it is — the caller's `request`, the `source` or `target` registry (`registry`: either,
 *   stamped by the client that met it), the job `storage`, the deployment's `config`uration, or the `service` itself;
 * - `temporary`: whether the same work may succeed later (retried in-process, then by the queue); `varies` when
 *   the code covers both (the error then says, e.g. a 503 against a 404);
 * - `http`: the status of an API answer carrying the code, and `answers` the operations that do; codes without
 *   `http` end a job, a sync rule or a CLI command, never an answer of the API.
 */

export type CodeSide = 'request' | 'source' | 'target' | 'registry' | 'storage' | 'config' | 'service';

/** The operations of the HTTP API (lib/api/openapi.ts `operationId`s). */
export type Operation = 'createImport' | 'listImports' | 'getImport' | 'cancelImport' | 'latestSync';

export interface CodeEntry {
  readonly side: CodeSide;
  readonly temporary: boolean | 'varies';
  /** One status, or the statuses, of the API answers carrying the code. */
  readonly http?: number | readonly number[];
  readonly answers?: readonly Operation[];
  readonly meaning: string;
}

const ALL: readonly Operation[] = ['createImport', 'listImports', 'getImport', 'cancelImport', 'latestSync'];
const create = ['createImport'] as const;
const req = (meaning: string, http = 400, answers: readonly Operation[] = create): CodeEntry => ({
  side: 'request',
  temporary: false,
  http,
  answers,
  meaning,
});
const job = (side: CodeSide, temporary: CodeEntry['temporary'], meaning: string): CodeEntry => ({
  side,
  temporary,
  meaning,
});

export const ERROR_CODES = {
  // ---- the request (HTTP 400 and friends; also a queued request's rejection reason) ----
  INVALID_JSON: req('The body (or a queued message) is not JSON.'),
  INVALID_BODY: req('The body is JSON but not an object.'),
  JSON_TOO_DEEP: req('The body nests deeper than the service reads.'),
  MISSING_FIELD: req('A required field is missing (`error.target` names it).'),
  INVALID_TYPE: req('A field has the wrong JSON type.'),
  INVALID_FIELD: req("A field's value is not allowed (a bad tag, repository or platform list)."),
  UNKNOWN_FIELD: req('A field the request does not have: a typo must not change the target silently.'),
  CONFLICTING_FIELDS: req('Fields that exclude each other (`images` and `repository`, a password without a username).'),
  INVALID_REFERENCE: req('`source` or a target name is not a valid image reference.'),
  INVALID_DIGEST: req('A digest is not `algorithm:hex` of a supported algorithm.', 400, []),
  INVALID_PLATFORM: req('A platform is not `os/arch[/variant]`.'),
  INVALID_HEADER: req('A header is malformed (Repeatability-Request-ID, Repeatability-First-Sent).'),
  SOURCE_NOT_ALLOWED: { ...req('The source registry is not in ALLOWED_SOURCES.'), side: 'source' },
  PRIVATE_ADDRESS: {
    ...req('The source is, or resolves to, a loopback, private or link-local address not listed in ALLOWED_SOURCES.'),
    side: 'source',
  },
  SOURCE_UNRESOLVABLE: {
    side: 'source',
    temporary: 'varies',
    http: [400, 503],
    answers: create,
    meaning: "The source's name does not resolve (400), or its name server did not answer (503, temporary).",
  },
  UNKNOWN_CREDENTIAL: req('`credential` names no configured REGISTRY_CREDENTIALS__<name>.'),
  CREDENTIAL_NOT_ALLOWED: req(
    'The named credential is not for this registry (its __REGISTRIES patterns), or a registry asked for it elsewhere.',
  ),
  CREDENTIALS_NOT_ACCEPTED: req(
    'Inline credentials where the deployment accepts none (a queued request, or the setting is off).',
  ),
  SECRET_IN_QUEUE: req(
    'A queued request carries a password or token: queued requests name credentials only (a rejection reason on the poison queue).',
    400,
    [],
  ),
  TARGET_NOT_ALLOWED: req('`target` is not the configured target registry.'),
  REPOSITORY_NOT_ALLOWED: { ...req('A target repository outside TARGET_REPOSITORIES.'), side: 'target' },
  INVALID_RESOURCE_ID: req('`registry` is not an ARM resource ID of a container registry.'),
  REGISTRY_RESOURCE_NOT_FOUND: req('Resource Manager has no registry with that resource ID.'),
  REGISTRY_RESOURCE_FORBIDDEN: req("The app's identity may not read that registry resource (Reader role)."),
  ARM_UNAUTHORIZED: req("Resource Manager refused the app's token (wrong tenant, expired)."),
  INVALID_QUERY: req('A query parameter of the listing is wrong (`error.target` names it).', 400, ['listImports']),
  INVALID_REQUEST: job('request', false, 'The import as asked cannot be done (found while planning it).'),
  USAGE: job('request', false, 'The CLI was called wrongly (an unknown flag, a missing value); exit code 2.'),
  NOT_FOUND: req('No import with that id.', 404, ['getImport', 'cancelImport']),
  INVALID_TOKEN: req(
    'AUTH_MODE=entra: the Bearer token is not one this API accepts (signature, issuer, audience, expiry, algorithm); the message says which.',
    401,
    [],
  ),
  FORBIDDEN: req(
    'AUTH_MODE=entra: a valid token without the app role the operation needs (Imports.Read, Imports.Write).',
    403,
    [],
  ),
  AUTHORITY_UNAVAILABLE: {
    side: 'service',
    temporary: true,
    http: 503,
    answers: [],
    meaning:
      'AUTH_MODE=entra: the app could not read its Entra ID signing keys (OpenID configuration, JWKS); try again later.',
  },
  IMPORT_EXPIRED: req(
    'The import ended more than JOB_RETENTION_DAYS ago and was deleted; its tombstone says when it ended.',
    404,
    ['getImport'],
  ),
  REPEATABILITY_CONFLICT: req('The Repeatability-Request-ID was used with another body.', 409),
  REPEATABILITY_EXPIRED: req('Repeatability-First-Sent is more than 24 hours ago.', 412),
  BODY_TOO_LARGE: req('The body is over 64 KiB.', 413),
  UNSUPPORTED_MEDIA_TYPE: req('The body is not `application/json`.', 415),
  IMPORT_ENDED: req('The import to cancel has ended already.', 409, ['cancelImport']),
  IMPORT_FINALIZING: req('The import to cancel is writing its tags.', 409, ['cancelImport']),
  NOT_IMPLEMENTED: req('Cancel takes no Repeatability-Request-ID.', 501, ['cancelImport']),
  NO_SYNC_YET: req('No sync pass has run yet, or no rules are configured.', 404, ['latestSync']),
  CROSS_ORIGIN_URL: job(
    'service',
    false,
    'The CLI: the service answered with a URL on another origin; the key is not sent there.',
  ),
  // ---- the deployment ----
  TARGET_REGISTRY_NOT_SET: {
    side: 'config',
    temporary: false,
    http: 503,
    answers: create,
    meaning: 'TARGET_REGISTRY is not set.',
  },
  MESSAGE_KEY_NOT_SET: {
    side: 'config',
    temporary: false,
    http: 503,
    answers: ['createImport', 'listImports'],
    meaning: 'MESSAGE_KEY is not set.',
  },
  REPEATABILITY_BUSY: {
    side: 'storage',
    temporary: true,
    http: 503,
    answers: create,
    meaning: 'The same Repeatability-Request-ID is being accepted by another request right now.',
  },
  KEY_VAULT_REFERENCE_UNRESOLVED: {
    side: 'config',
    temporary: true,
    http: 503,
    answers: ALL,
    meaning: 'A setting holds a Key Vault reference the platform has not resolved (yet).',
  },
  INVALID_SETTING: job('config', false, 'A setting has a value the service cannot use (the message names it).'),
  INVALID_RULES: job('config', false, 'The sync rules are not valid (file, line and field named).'),
  TARGET_AUTH: job('config', false, 'TARGET_AUTH names no way to sign in to the target.'),
  TARGET_USERNAME: job('config', false, 'TARGET_PASSWORD without TARGET_USERNAME, or the other way round.'),
  MESSAGE_KEY: job('config', false, 'MESSAGE_KEY is not base64 of 32 bytes.'),
  // ---- what the import met (a job's error) ----
  SOURCE_NOT_FOUND: job('source', false, 'The source has no such tag or digest.'),
  TAG_EXISTS: job('target', false, 'A target tag exists and points elsewhere; import with `force` to move it.'),
  TOO_MANY_MANIFESTS: job('source', false, 'The source index has more manifests than MAX_MANIFESTS.'),
  TOO_MANY_BLOBS: job('source', false, 'The import has more blobs than MAX_BLOBS.'),
  IMPORT_TOO_LARGE: job('source', false, 'The import is larger than MAX_IMPORT_BYTES.'),
  NO_MATCHING_PLATFORM: job('source', false, 'No manifest of the index matches `platforms`.'),
  UNSUPPORTED_MANIFEST: job('registry', false, 'A manifest of a media type the service does not copy.'),
  DIGEST_MISMATCH: job('registry', false, 'Content is not what its digest says.'),
  BLOB_SIZE_MISMATCH: job('source', false, "A blob's size differs from its descriptor."),
  JOB_EXPIRED: job('service', false, 'The import ran longer than MAX_JOB_HOURS.'),
  UPLOAD_FAILED: job('target', false, 'The target refused a blob upload in a way another session would not change.'),
  REFERRERS_TAG_INVALID: job('target', false, "The target's referrers tag schema index is not a valid index."),
  REFERRERS_TAG_CONFLICT: job('target', true, "The target's referrers tag changed while it was updated."),
  TOO_MANY_REFERRERS: job('source', false, 'More referrers than the service follows.'),
  TOO_MANY_TAGS: job('source', false, 'A repository lists more tags than MAX_TAGS (sync).'),
  NO_DIGEST: job('source', false, 'Sync: a registry answered a HEAD without Docker-Content-Digest.'),
  CANCELED: job('request', false, 'The import was canceled.'),
  RATE_LIMITED: job(
    'registry',
    true,
    'A registry asked to come back later (Retry-After); longer than MAX_RETRY_AFTER_SECONDS fails the job.',
  ),
  TIMEOUT: job(
    'registry',
    true,
    'A deadline passed: no answer within REQUEST_TIMEOUT_SECONDS, a body below MIN_BYTES_PER_SECOND, a step past its budget.',
  ),
  ABORTED: job('service', true, "The work was stopped by its owner (a step's deadline, a canceled job)."),
  STEP_POISONED: job(
    'service',
    false,
    'A step was delivered maxDequeueCount times and never finished (its worker timed out or died each time).',
  ),
  STEP_NOT_AUTHENTIC: job('request', false, "A step message without the service's MAC: refused, nothing done."),
  STEP_NOT_IN_PLAN: job(
    'request',
    false,
    "A step message naming a step its job's plan does not have, or carrying fields its step does not have: refused.",
  ),
  MESSAGE_POISONED: job('request', false, 'A queued message that is not a step was given up by the host.'),
  PLAN_MISSING: job('storage', true, 'A step found no plan for its job (yet).'),
  CHECKPOINT_LOST: job('storage', true, "A blob step's checkpoint was taken by another worker."),
  STORAGE_ERROR: job('storage', 'varies', 'A job storage operation failed.'),
  CONCURRENT_UPDATE: job('storage', true, 'A job record changed while it was being updated.'),
  JOB_EXISTS: job('storage', false, 'A job with that id exists already.'),
  JOB_NOT_FOUND: job('storage', false, 'A step names a job that does not exist.'),
  SECRET_UNREADABLE: job('storage', false, "A job's sealed credentials cannot be opened (CREDENTIAL_KEY changed)."),
  INTERNAL: job('service', false, 'An error nobody classified: a bug. Not retried; see the function logs.'),
  // ---- the registry protocol ----
  MANIFEST_TOO_LARGE: job('registry', false, 'A manifest over 4 MiB.'),
  RANGE_INVALID: job('registry', 'varies', 'A registry refused or ignored a range (a ranged GET, an upload chunk).'),
  AUTH_REQUIRED: job('registry', false, 'The registry wants credentials and none were given.'),
  AUTH_FAILED: job('registry', false, "The registry's token endpoint refused the credentials."),
  INSECURE_REDIRECT: job('registry', false, 'A redirect from https to plain http: refused.'),
  TOO_MANY_REDIRECTS: job('registry', false, 'More than 5 redirects.'),
  UNEXPECTED_UPLOAD_LOCATION: job('target', false, 'An upload Location on another origin: refused.'),
  CROSS_ORIGIN_LINK: job('registry', false, 'A pagination Link on another origin: refused.'),
  NO_LOCATION: job('target', false, 'An upload answer without Location.'),
  INVALID_ANSWER: job('registry', false, 'An answer the service cannot read (a token response, a listing).'),
  UNEXPECTED_LENGTH: job('registry', true, 'A blob body of the wrong length (read again).'),
  CONNECTION_FAILED: job(
    'registry',
    'varies',
    'The connection failed before a complete answer (temporary for resets and refusals).',
  ),
  REAUTH: job('target', true, 'The registry asked for new credentials while a body streamed; the chunk is sent again.'),
  ECONNREFUSED: job('registry', true, 'The connection was refused.'),
  ECONNRESET: job('registry', true, 'The connection was reset.'),
  ECONNABORTED: job('registry', true, 'The connection was aborted.'),
  EPIPE: job('registry', true, 'The connection closed while sending.'),
  EHOSTUNREACH: job('registry', true, 'No route to the host.'),
  ENETUNREACH: job('registry', true, 'The network is unreachable.'),
  ENOTFOUND: job('registry', false, 'The name does not resolve.'),
  UNREACHABLE: job('service', 'varies', 'The CLI could not reach the service (--endpoint).'),
  // the distribution spec's codes, as registries answer them (a registry's other codes become HTTP_<status>)
  BLOB_UNKNOWN: job('registry', false, 'Registry: blob unknown.'),
  BLOB_UPLOAD_INVALID: job('target', false, 'Registry: the upload session is invalid.'),
  BLOB_UPLOAD_UNKNOWN: job('target', false, 'Registry: the upload session is unknown (expired).'),
  DIGEST_INVALID: job('registry', false, 'Registry: the digest does not match the content.'),
  MANIFEST_BLOB_UNKNOWN: job('target', false, 'Registry: a manifest references a blob the registry does not have.'),
  MANIFEST_INVALID: job('registry', false, 'Registry: the manifest is invalid.'),
  MANIFEST_UNKNOWN: job('source', false, 'Registry: no such manifest.'),
  NAME_INVALID: job('registry', false, 'Registry: invalid repository name.'),
  NAME_UNKNOWN: job('registry', false, 'Registry: no such repository.'),
  CREDENTIAL_HELPER_FAILED: job(
    'request',
    false,
    'CLI: a Docker credential helper (`docker-credential-<name>`) named by the Docker config is missing or failed; the message names it.',
  ),
  SIGN_IN_FAILED: job(
    'request',
    'varies',
    'CLI: DefaultAzureCredential got no Entra ID token (for --scope, or --target-auth azure); the message says what each way in answered.',
  ),
  SIZE_INVALID: job('registry', false, 'Registry: content length does not match.'),
  UNAUTHORIZED: {
    side: 'registry',
    temporary: false,
    http: 401,
    answers: [],
    meaning:
      "Registry: authentication required (a job's error); or, with AUTH_MODE=entra, an API call without a Bearer token (401).",
  },
  DENIED: job('registry', false, 'Registry: access denied.'),
  UNSUPPORTED: job('registry', false, 'Registry: the operation is unsupported.'),
  TOOMANYREQUESTS: job('registry', true, 'Registry: too many requests.'),
  UNAVAILABLE: job('registry', true, 'Registry: the service is unavailable.'),
  UNKNOWN: job('registry', 'varies', 'Registry: an error the registry did not name.'),
  // ---- Azure sign-in (lib/azure/errors.ts) ----
  IDENTITY_UNAVAILABLE: job(
    'registry',
    'varies',
    'No Entra ID token: no managed identity assigned, a wrong client ID, the endpoint down.',
  ),
  TOKEN_EXPIRED: job('request', false, 'A password-only Entra ID token has expired.'),
  TOKEN_REJECTED: job('registry', false, "The registry's /oauth2/exchange refused the Entra ID token."),
  ACCESS_DENIED: job('registry', false, 'The identity lacks pull (source) or push (target) rights on the registry.'),
  PUBLIC_ACCESS_DISABLED: job(
    'source',
    false,
    "A source given by login server refused the app's network address: give it by resource ID.",
  ),
  NETWORK_RESTRICTED: job(
    'registry',
    false,
    "A registry refused the app's network address (firewall, private endpoint).",
  ),
  CROSS_TENANT_NOT_SUPPORTED: {
    ...req('A cross-tenant token for a registry that refuses public network access.'),
    side: 'source',
  },
  NOT_ACR: job('registry', false, 'The registry has no /oauth2/exchange: not an Azure Container Registry.'),
  AZURE_AUTH_FAILED: {
    side: 'registry',
    temporary: 'varies',
    http: 400,
    answers: create,
    meaning: 'A token or Resource Manager endpoint answered something else (temporary for 429/5xx).',
  },
} as const satisfies Record<string, CodeEntry>;

/** A code of the catalogue. */
export type CatalogueCode = keyof typeof ERROR_CODES;

/** Every code an error may carry: the catalogue's, and `HTTP_<status>` for an answer no code names. */
export type ErrorCode = CatalogueCode | `HTTP_${number}`;

const HTTP_CODE = /^HTTP_[1-5]\d\d$/;

/** Whether `code` is one of ours (a catalogued code, or `HTTP_<status>`). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && (Object.hasOwn(ERROR_CODES, code) || HTTP_CODE.test(code));
}

/** The codes an operation answers with a status, in catalogue order (the OpenAPI enums). */
export function codesAnswered(op: Operation, status: number): CatalogueCode[] {
  return (Object.keys(ERROR_CODES) as CatalogueCode[]).filter((code) => {
    const e: CodeEntry = ERROR_CODES[code];
    return e.answers?.includes(op) && (Array.isArray(e.http) ? e.http.includes(status) : e.http === status);
  });
}
