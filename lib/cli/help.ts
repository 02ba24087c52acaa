/**
 * The CLI's help: the whole usage (`oci-import --help`) and one text per command (`oci-import COMMAND --help`),
 * made of the same sections; and `--version`, the package's version embedded in the bundle when it is built
 * (scripts/build-cli.mjs), read from package.json when the compiled modules run without a bundle.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { settingsHelp } from '../config.js';

declare const __OCI_IMPORT_VERSION__: string | undefined;

const HEAD = 'oci-import — copy images and OCI artifacts between registries, without Docker\n';

const USAGE_LINES = {
  import: `  oci-import import --source REF [--target HOST] [--image REPO:TAG]... [options]
  oci-import import --endpoint URL [--key KEY] --source REF [--image REPO:TAG]... [--no-wait] [options]`,
  sync: '  oci-import sync --rules FILE [--target HOST] [--dry-run] [--quiet] [options]',
  status: '  oci-import status ID [--wait] --endpoint URL',
  list: '  oci-import list [--status S] [--limit N] --endpoint URL',
  cancel: '  oci-import cancel ID --endpoint URL',
} as const;

export type Command = keyof typeof USAGE_LINES;

const IMPORT_OPTIONS = `Import options:
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
                             (no credential flag for a source or target: what docker login, podman
                             or skopeo stored for that registry: $DOCKER_CONFIG/config.json or
                             ~/.docker/config.json auths, credHelpers, credsStore; then
                             $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json)
  --password P               the source password on the command line: visible to other local users in
                             the process list; prefer --password-stdin or $OCI_IMPORT_PASSWORD
  --target-username U        target registry username (default: $TARGET_USERNAME); its password from
                             $OCI_IMPORT_TARGET_PASSWORD or $TARGET_PASSWORD (or --target-password P)
  --target-auth MODE         azure (DefaultAzureCredential: environment, workload identity, managed
                             identity, az login; then the ACR token exchange; also for --registry given
                             by resource ID), managed-identity (the managed identity only), basic or
                             anonymous (default: $TARGET_AUTH, else basic with target credentials, else anonymous)
  --insecure HOST            use plain HTTP for HOST (repeatable; also $INSECURE_REGISTRIES)
  --wait-rate-limit          wait when a registry asks to retry later (up to $MAX_RETRY_AFTER_SECONDS,
                             3600); without it a wait longer than 30 s fails at once with RATE_LIMITED
  --json                     print the result as JSON on stdout; a failure as {"error":{"code","message"}}
  -h, --help                 show this help
`;

const SYNC_OPTIONS = `Sync options (one pass over the rules: what differs from the source is imported, by HEAD comparison):
  --rules FILE               JSON sync rules (see README); named credentials from REGISTRY_CREDENTIALS__<name>__*
  --dry-run                  print the plan, write nothing
  --quiet                    no progress line (there is none either when stderr is not a terminal)
  --target, --target-username, --target-auth, --insecure, --wait-rate-limit, --json as for import
`;

const REMOTE = `A deployed service (--endpoint: the API base URL, e.g. https://myapp.azurewebsites.net/api, or
$OCI_IMPORT_ENDPOINT, which import, status, list and cancel all follow): import sends the request there and
follows its status with the same progress line; the deployment owns its target (--target and the other
target options are refused).
  --key KEY                  the function key, sent as x-functions-key (prefer $OCI_IMPORT_KEY)
  --scope SCOPE              instead of a key, an Entra ID token for this scope (the service's
                             AUTH_MODE=entra; e.g. api://oci-import/.default; or $OCI_IMPORT_SCOPE),
                             from DefaultAzureCredential: environment, workload identity (GitHub
                             Actions), managed identity, az login
  --no-wait                  print the import id and status URL and exit at once (then: status ID --wait)
  --credential NAME          a named credential of the deployment, instead of --username
  --include-referrers, --referrer-type TYPE  as for a local import (the service checks them)
`;

const STATUS = `  --wait                     status: follow the import to its end, with import's progress line and exit status
  --status S                 list: only imports in these states (comma list: queued,running,waiting,
                             succeeded,failed,canceled)
  --limit N                  list: at most N imports, newest first (default 20)
  status, list and cancel take --json too. Exit status: 0 succeeded (status/list/cancel: done), 1 the
  import failed or was canceled, or the service refused ([CODE]: message), 2 usage error.
`;

const ENVIRONMENT = `${settingsHelp()}
CHUNK_SIZE unset: each blob as one streamed PATCH.
Exit status: 0 imported, 1 import failed, 2 usage error.
`;

export const USAGE = `${HEAD}
Usage:
${Object.values(USAGE_LINES).join('\n')}
  oci-import COMMAND --help   oci-import --version

${IMPORT_OPTIONS}
${SYNC_OPTIONS}
${REMOTE}${STATUS}
${ENVIRONMENT}`;

const PER_COMMAND: Record<Command, string> = {
  import: `${IMPORT_OPTIONS}\n${REMOTE}\n${ENVIRONMENT}`,
  sync: `${SYNC_OPTIONS}\n${ENVIRONMENT}`,
  status: `Shows one import of a deployed service ($OCI_IMPORT_ENDPOINT or --endpoint; key: $OCI_IMPORT_KEY).
  --wait                     follow the import to its end with the progress line of import; exit 0 when it
                             succeeded, 1 when it failed or was canceled
  --json                     print the import as JSON; a failure as {"error":{"code","message"}}
`,
  list: `Lists the imports of a deployed service, newest first ($OCI_IMPORT_ENDPOINT or --endpoint).
  --status S                 only imports in these states (comma list: queued,running,waiting,succeeded,
                             failed,canceled)
  --limit N                  at most N imports (default 20)
  --json                     print {"value":[…]}; a failure as {"error":{"code","message"}}
`,
  cancel: `Cancels an import of a deployed service ($OCI_IMPORT_ENDPOINT or --endpoint).
  --json                     print the import as JSON; a failure as {"error":{"code","message"}}
`,
};

/** The help of one command: its usage lines and its options only. */
export function commandHelp(command: string): string {
  const known = command in PER_COMMAND ? (command as Command) : undefined;
  if (!known) return USAGE;
  return `${HEAD}\nUsage:\n${USAGE_LINES[known]}\n\n${PER_COMMAND[known]}`;
}

/** The package's version: embedded in the bundle, else package.json two folders above dist/lib/cli or lib/cli. */
export function version(): string {
  if (typeof __OCI_IMPORT_VERSION__ === 'string') return __OCI_IMPORT_VERSION__;
  for (const up of ['../..', '../../..']) {
    try {
      const pkg = JSON.parse(
        readFileSync(join(dirname(new URL(import.meta.url).pathname), up, 'package.json'), 'utf8'),
      ) as { name?: string; version?: string };
      if (pkg.name === 'oci-import' && pkg.version) return pkg.version;
    } catch {
      // not this folder
    }
  }
  return 'unknown';
}
