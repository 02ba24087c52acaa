/**
 * oci-import's own local Azure Functions host (`npm start`), standing in for Core Tools' `func start`.
 *
 * As in Azure, two processes: this host process (HTTP front, queue and timer listeners, leases, poison
 * queues, timeouts) and a worker process (worker.ts) that provides `@azure/functions-core`, imports the
 * function modules named by package.json `main` (so they register with `app.http/storageQueue/timer`
 * exactly as in Azure) and runs every invocation. A timeout, an uncaught exception or an unhandled
 * rejection kills and restarts the worker; the host stays up (worker-channel.ts).
 * Run with `--help` for flags and environment variables.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isListening, startAzurite, type StartedAzurite } from './azurite.js';
import { buildCatalog, type HostedFunction } from './catalog.js';
import { expandGlob } from './glob.js';
import { createHttpHost, toHttpFunction, type HttpFunction } from './http-trigger.js';
import { InFlight } from './invoke.js';
import { ensureMessageKey } from './message-key.js';
import { WorkerChannel } from './worker-channel.js';
import { describeError, HostLogger, toHostLevel } from './log.js';
import { parseSchedule } from './ncrontab.js';
import { QueueListener } from './queue-trigger.js';
import {
  applyLocalSettings,
  DEV_PORTS,
  HOST_JSON_OVERRIDE_PREFIX,
  HostConfigError,
  readHostJson,
  readLocalSettings,
  resolveStorageConnection,
  validateQueueName,
  type StorageConnection,
} from './settings.js';
import { QueueClients } from './storage.js';
import type { OutputDeps } from './outputs.js';
import { TimerListener } from './timer-trigger.js';

const HELP = `oci-import local Functions host

Usage: npm start            (builds, then runs dist/scripts/host/main.js)
       node dist/scripts/host/main.js [options]
       node --import tsx scripts/host/main.ts [options]

Options (each also has an environment variable; the flag wins):
  --root DIR              function app root (package.json, host.json)          FUNCTIONS_APP_ROOT (default: cwd)
  --main GLOB             function modules to load, relative to the root        FUNCTIONS_MAIN (default: package.json "main")
  --host-json FILE        host.json to use                                      HOST_JSON (default: <root>/host.json)
  --local-settings FILE   local.settings.json (Values → environment)            LOCAL_SETTINGS_JSON (default: <root>/local.settings.json)
  --port N                HTTP port on 127.0.0.1 (0 = any free port)            FUNCTIONS_HTTP_PORT, PORT, Host.LocalHttpPort (default 7071)
  --no-azurite            never start Azurite                                   LOCAL_HOST_AZURITE=0
  --setting-defaults      a %SETTING% without a value takes its default from    LOCAL_HOST_SETTING_DEFAULTS=1
                          lib/config.ts (off: refused at start-up, as in Azure)
  -h, --help

Other environment variables:
  AzureWebJobsStorage                 storage connection (default UseDevelopmentStorage=true → Azurite on 127.0.0.1:10000-10002)
  MESSAGE_KEY                         key of the app's queue messages (default: made once, kept in <root>/.local-host/message-key)
  AzureFunctionsJobHost__<path>       overrides a host.json value, e.g. AzureFunctionsJobHost__extensions__queues__maxDequeueCount=3
  FUNCTIONS_REQUEST_BODY_SIZE_LIMIT   HTTP request body cap in bytes (default 104857600, as in Azure); above it an empty 413
  LOCAL_HOST_FUNCTION_KEY             demand this key for authLevel function (x-functions-key header or code query), else an empty 401
  LOCAL_HOST_MASTER_KEY               the master key: accepted for authLevel function and admin
  LOCAL_HOST_QUEUE_LEASE_SECONDS      invisibility lease of a running queue message, renewed at half (default 600, as in Azure)
  LOCAL_HOST_SHUTDOWN_GRACE_SECONDS   wait for running invocations on SIGINT/SIGTERM (default 5)
  LOCAL_HOST_LOG_LEVEL                trace|debug|information|warning|error (default: host.json logging.logLevel.default)
  AzureWebJobs.<function>.Disabled    true to disable a function
`;

function intSetting(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new HostConfigError(`${name} must be an integer between ${min} and ${max} (got '${raw}')`);
  return n;
}

function describeStorage(conn: StorageConnection): string {
  return conn.kind === 'identity'
    ? `${conn.setting} → ${conn.queueEndpoint} (identity-based, DefaultAzureCredential)`
    : `${conn.setting} → queue ${conn.queueEndpoint}${conn.blobEndpoint ? `, blob ${conn.blobEndpoint}` : ''}${conn.tableEndpoint ? `, table ${conn.tableEndpoint}` : ''}`;
}

function fmtSpan(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** Documented defaults of app settings (lib/config.ts SETTINGS), for `%SETTING%` left unset locally. */
async function loadSettingDefaults(): Promise<(name: string) => string | undefined> {
  try {
    const specifier = new URL('../../lib/config.js', import.meta.url).href;
    const mod = (await import(specifier)) as { SETTINGS?: readonly { name: string; default?: string }[] };
    const map = new Map<string, string>();
    for (const s of mod.SETTINGS ?? []) {
      if (typeof s.default === 'string' && !/\s{2,}|,| or | else /.test(s.default)) map.set(s.name, s.default);
    }
    return (name) => map.get(name);
  } catch {
    return () => undefined;
  }
}

async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolvePromise();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** The worker's entry: worker.ts next to this file when run from source (tsx), worker.js when built. */
function workerPath(): string {
  const self = fileURLToPath(import.meta.url);
  return resolve(self, '..', `worker${extname(self)}`);
}

const OPTIONS = {
  root: { type: 'string' },
  main: { type: 'string' },
  'host-json': { type: 'string' },
  'local-settings': { type: 'string' },
  port: { type: 'string' },
  'no-azurite': { type: 'boolean' },
  'setting-defaults': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Args = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; strict: true }>>['values'];
type Env = NodeJS.ProcessEnv;

/** What runs, and what shutdown stops: filled in as start-up goes. */
class Host {
  azurite: StartedAzurite | undefined;
  server: Server | undefined;
  channel: WorkerChannel | undefined;
  readonly queueListeners: QueueListener[] = [];
  readonly timerListeners: TimerListener[] = [];
  readonly inFlight = new InFlight();
  private shuttingDown = false;

  constructor(
    readonly logger: HostLogger,
    private readonly env: Env,
  ) {}

  async shutdown(reason: string, code: number): Promise<never> {
    const { logger } = this;
    if (this.shuttingDown) {
      logger.warn('host', `${reason} again: exiting now`);
      this.azurite?.child.kill('SIGTERM');
      process.exit(code || 1);
    }
    this.shuttingDown = true;
    const graceMs =
      intSetting('LOCAL_HOST_SHUTDOWN_GRACE_SECONDS', this.env.LOCAL_HOST_SHUTDOWN_GRACE_SECONDS, 5, 0, 600) * 1000;
    logger.info('host', `${reason}: stopping (running invocations get up to ${graceMs / 1000}s)`);
    this.server?.close();
    this.server?.closeIdleConnections();
    for (const t of this.timerListeners) t.stop();
    await Promise.all(this.queueListeners.map((q) => q.stop()));
    if (!(await this.inFlight.drain(graceMs))) {
      logger.warn(
        'host',
        `${this.inFlight.size} invocation(s) still running — abandoned; their queue messages reappear when the lease expires`,
      );
    }
    this.server?.closeAllConnections();
    // appTerminate hooks run in the worker, which then exits (killed after a grace).
    await this.channel?.stop();
    if (this.azurite) {
      logger.info('host', 'stopping Azurite');
      await this.azurite.stop();
    }
    logger.info('host', 'stopped');
    process.exit(code);
  }

  /** Signals stop the host; the app's code runs in the worker process, these catch bugs of the host itself. */
  handleProcessEvents(): void {
    process.on('SIGINT', () => void this.shutdown('SIGINT', 0));
    process.on('SIGTERM', () => void this.shutdown('SIGTERM', 0));
    process.on('unhandledRejection', (reason) => {
      this.logger.error(
        'host',
        `unhandled promise rejection in the host process: ${reason instanceof Error && reason.stack ? reason.stack : describeError(reason)}`,
      );
    });
    process.on('uncaughtException', (err) => {
      this.logger.error('host', `uncaught exception in the host process; stopping: ${err.stack ?? describeError(err)}`);
      void this.shutdown('uncaught exception', 1);
    });
  }
}

/** The host's settings: flags, environment, local.settings.json (applied to the environment) and host.json. */
function readSettings(root: string, args: Args, env: Env, logger: HostLogger) {
  const local = readLocalSettings(
    resolve(root, args['local-settings'] ?? env.LOCAL_SETTINGS_JSON ?? 'local.settings.json'),
  );
  const applied = applyLocalSettings(local, env);
  const hostJson = readHostJson(resolve(root, args['host-json'] ?? env.HOST_JSON ?? 'host.json'), env);
  logger.minLevel = env.LOCAL_HOST_LOG_LEVEL ? toHostLevel(env.LOCAL_HOST_LOG_LEVEL.toLowerCase()) : hostJson.logLevel;
  const keys = {
    functionKey: env.LOCAL_HOST_FUNCTION_KEY || undefined,
    masterKey: env.LOCAL_HOST_MASTER_KEY || undefined,
  };
  return {
    local,
    applied,
    hostJson,
    keys,
    keysOn: keys.functionKey !== undefined || keys.masterKey !== undefined,
    leaseSeconds: intSetting('LOCAL_HOST_QUEUE_LEASE_SECONDS', env.LOCAL_HOST_QUEUE_LEASE_SECONDS, 600, 1, 3600),
    maxBodyBytes: intSetting(
      'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT',
      env.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT,
      104_857_600,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    port: intSetting(
      'port',
      args.port ??
        env.FUNCTIONS_HTTP_PORT ??
        env.PORT ??
        (local.localHttpPort !== undefined ? String(local.localHttpPort) : undefined),
      7071,
      0,
      65535,
    ),
    noAzurite: args['no-azurite'] === true || /^(0|false|no)$/i.test(env.LOCAL_HOST_AZURITE ?? ''),
    settingDefaults: args['setting-defaults'] === true || /^(1|true|yes)$/i.test(env.LOCAL_HOST_SETTING_DEFAULTS ?? ''),
  };
}

type Settings = ReturnType<typeof readSettings>;

/** The glob of the function modules: --main, FUNCTIONS_MAIN, else package.json "main". */
function mainGlobOf(root: string, args: Args, env: Env): string {
  const given = args.main ?? env.FUNCTIONS_MAIN;
  if (given) return given;
  const pkgPath = resolve(root, 'package.json');
  if (!existsSync(pkgPath)) throw new HostConfigError(`${pkgPath} not found (set --root, or --main)`);
  const main = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { main?: string }).main;
  if (!main)
    throw new HostConfigError(`${pkgPath} has no "main" (the glob of function modules, e.g. dist/functions/*.js)`);
  return main;
}

/** The functions the worker's modules registered, with their settings resolved (`%SETTING%`). */
async function catalogOf(
  registered: Parameters<typeof buildCatalog>[0],
  env: Env,
  settings: Settings,
  logger: HostLogger,
): Promise<ReturnType<typeof buildCatalog>> {
  let catalog;
  try {
    catalog = buildCatalog(registered, env, settings.settingDefaults ? await loadSettingDefaults() : undefined);
  } catch (err) {
    if (err instanceof HostConfigError && !settings.settingDefaults) {
      throw new HostConfigError(
        `${err.message}. (The local host refuses it as Azure does; --setting-defaults / LOCAL_HOST_SETTING_DEFAULTS=1 takes lib/config.ts defaults instead.)`,
      );
    }
    throw err;
  }
  for (const w of catalog.warnings) logger.warn('host', w);
  for (const name of catalog.defaulted)
    logger.warn(
      'host',
      `app setting ${name} is not set; using its documented default (lib/config.ts) because of --setting-defaults — Azure would refuse to start the function`,
    );
  return catalog;
}

/** AzureWebJobsStorage, and Azurite started when it is development storage and nothing listens on its ports. */
async function prepareStorage(
  host: Host,
  root: string,
  settings: Settings,
  env: Env,
): Promise<{ storage: StorageConnection; note: string }> {
  const storage = resolveStorageConnection('AzureWebJobsStorage', env);
  if (!storage.isDevelopmentStorage) return { storage, note: '' };
  const up = await Promise.all([DEV_PORTS.blob, DEV_PORTS.queue, DEV_PORTS.table].map((p) => isListening(p)));
  if (up.every(Boolean)) return { storage, note: ' (Azurite already running)' };
  if (settings.noAzurite) {
    host.logger.warn(
      'host',
      'development storage is not reachable and Azurite start is disabled: queue triggers will fail until it runs (npm run azurite)',
    );
    return { storage, note: ' (Azurite not running; --no-azurite given)' };
  }
  if (up.some(Boolean)) {
    throw new HostConfigError(
      `some of the Azurite ports ${DEV_PORTS.blob}/${DEV_PORTS.queue}/${DEV_PORTS.table} are in use by something else; free them or set AzureWebJobsStorage`,
    );
  }
  host.logger.info('host', 'development storage not running: starting Azurite (data in .azurite/)');
  host.azurite = await startAzurite(root);
  return {
    storage,
    note: ` (Azurite started by the host, data in ${resolve(root, '.azurite')}, log ${host.azurite.logFile})`,
  };
}

interface Started {
  readonly host: Host;
  readonly worker: WorkerChannel;
  readonly active: readonly HostedFunction[];
  readonly settings: Settings;
  readonly env: Env;
  readonly outputs: OutputDeps;
}

/** The HTTP front on 127.0.0.1: its base URL, and the HTTP functions it routes to. */
async function startHttp(s: Started): Promise<{ baseUrl: string; functions: HttpFunction[] }> {
  const { host, worker, settings } = s;
  const functions = s.active.filter((f) => f.kind === 'http').map((hosted) => toHttpFunction(hosted));
  const server = createHttpHost({
    invoke: worker.invoke.bind(worker),
    functions,
    routePrefix: settings.hostJson.routePrefix,
    maxBodyBytes: settings.maxBodyBytes,
    functionTimeoutMs: settings.hostJson.functionTimeoutMs,
    logger: host.logger,
    inFlight: host.inFlight,
    keys: settings.keys,
    status: () => ({ worker: { pid: worker.pid, restarts: worker.restarts, running: worker.running } }),
    outputs: s.outputs,
  });
  host.server = server;
  try {
    return { baseUrl: `http://127.0.0.1:${await listen(server, settings.port)}`, functions };
  } catch (err) {
    throw new HostConfigError(
      `cannot listen on 127.0.0.1:${settings.port}: ${describeError(err)} (use --port or FUNCTIONS_HTTP_PORT)`,
    );
  }
}

/** A listener per queue-triggered function (and its `-poison` queue); the banner's lines. */
async function createQueueListeners(s: Started): Promise<string[]> {
  const lines: string[] = [];
  for (const hosted of s.active.filter((f) => f.kind === 'queue')) {
    const queueName = String(hosted.trigger.queueName ?? '');
    validateQueueName(queueName, `function '${hosted.fn.name}' queueName`);
    if (queueName.length > 56)
      throw new HostConfigError(
        `function '${hosted.fn.name}': queue name '${queueName}' leaves no room for the '-poison' suffix (max 56 characters)`,
      );
    const conn = resolveStorageConnection(
      typeof hosted.trigger.connection === 'string' ? hosted.trigger.connection : undefined,
      s.env,
    );
    const [queue, poison] = await Promise.all([
      s.outputs.clients.queue(conn, queueName),
      s.outputs.clients.queue(conn, `${queueName}-poison`),
    ]);
    s.host.queueListeners.push(
      new QueueListener({
        invoke: s.worker.invoke.bind(s.worker),
        hosted,
        queueName,
        queue,
        poison,
        options: s.settings.hostJson.queues,
        leaseSeconds: s.settings.leaseSeconds,
        functionTimeoutMs: s.settings.hostJson.functionTimeoutMs,
        logger: s.host.logger,
        inFlight: s.host.inFlight,
        outputs: s.outputs,
      }),
    );
    lines.push(
      `  ${hosted.fn.name}: queueTrigger '${queueName}' (poison '${queueName}-poison') on ${conn.queueEndpoint}`,
    );
  }
  return lines;
}

/** A listener per timer-triggered function; the banner's lines. */
function createTimerListeners(s: Started): string[] {
  const lines: string[] = [];
  for (const hosted of s.active.filter((f) => f.kind === 'timer')) {
    let schedule;
    try {
      schedule = parseSchedule(String(hosted.trigger.schedule ?? ''));
    } catch (err) {
      throw new HostConfigError(`function '${hosted.fn.name}' schedule: ${(err as Error).message}`);
    }
    const listener = new TimerListener({
      invoke: s.worker.invoke.bind(s.worker),
      hosted,
      schedule,
      runOnStartup: hosted.trigger.runOnStartup === true,
      functionTimeoutMs: s.settings.hostJson.functionTimeoutMs,
      logger: s.host.logger,
      inFlight: s.host.inFlight,
      outputs: s.outputs,
    });
    s.host.timerListeners.push(listener);
    const next = listener.nextOccurrence();
    lines.push(
      `  ${hosted.fn.name}: timerTrigger ${schedule.describe()}${hosted.trigger.runOnStartup === true ? ', runOnStartup' : ''}, next ${next ? next.toISOString() : 'never'}`,
    );
  }
  return lines;
}

/** The start-up banner's header: where everything comes from, and what it is set to. */
function bannerHeader(o: {
  s: Started;
  root: string;
  mainGlob: string;
  files: readonly string[];
  storage: StorageConnection;
  storageNote: string;
  messageKey: string;
}): string[] {
  const { settings } = o.s;
  const { hostJson, local } = settings;
  const q = hostJson.queues;
  return [
    '',
    `oci-import local Functions host — worker process pid ${String(o.s.worker.pid)}`,
    `  app root:    ${o.root}`,
    `  functions:   ${o.mainGlob} (${o.files.length} file${o.files.length === 1 ? '' : 's'})`,
    `  settings:    ${local.path ? `${local.path} (${settings.applied.length} value(s) applied; environment wins)` : 'no local.settings.json'}`,
    `  host.json:   ${hostJson.path}: queues batchSize ${q.batchSize}, newBatchThreshold ${q.newBatchThreshold}, maxDequeueCount ${q.maxDequeueCount}, visibilityTimeout ${fmtSpan(q.visibilityTimeoutMs)}, maxPollingInterval ${fmtSpan(q.maxPollingIntervalMs)}, messageEncoding ${q.messageEncoding}; functionTimeout ${hostJson.functionTimeoutMs === null ? 'unbounded' : fmtSpan(hostJson.functionTimeoutMs)}; queue lease ${settings.leaseSeconds}s renewed at half${hostJson.overridden.length ? `; overridden by ${HOST_JSON_OVERRIDE_PREFIX}*: ${hostJson.overridden.join(', ')}` : ''}`,
    `  http:        body cap ${settings.maxBodyBytes} bytes (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT); keys ${settings.keysOn ? 'demanded for authLevel function/admin (LOCAL_HOST_FUNCTION_KEY / LOCAL_HOST_MASTER_KEY)' : 'not demanded (set LOCAL_HOST_FUNCTION_KEY to require them as Azure does)'}`,
    `  storage:     ${describeStorage(o.storage)}${o.storageNote}`,
    `  queue:       step messages authenticated with ${o.messageKey}`,
    '',
  ];
}

/** The banner's list of functions: HTTP routes with their URL, queue and timer triggers, and what does not run. */
function bannerFunctions(o: {
  catalog: ReturnType<typeof buildCatalog>;
  http: readonly HttpFunction[];
  baseUrl: string;
  routePrefix: string;
  keysOn: boolean;
  queueLines: readonly string[];
  timerLines: readonly string[];
}): string[] {
  const prefix = o.routePrefix ? `/${o.routePrefix}` : '';
  return [
    'Functions:',
    ...o.http.map(
      (http) =>
        `  ${http.fn.name}: [${[...http.methods].join(',')}] ${o.baseUrl}${prefix}/${http.route.template.replace(/^\/+/, '')}${http.authLevel !== 'anonymous' ? `  (authLevel ${http.authLevel}${o.keysOn ? '' : ': no key configured, not enforced'})` : ''}`,
    ),
    ...o.queueLines,
    ...o.timerLines,
    ...o.catalog.functions
      .filter((f) => f.disabled)
      .map((f) => `  ${f.fn.name}: disabled (AzureWebJobs.${f.fn.name}.Disabled)`),
    ...o.catalog.functions
      .filter((f) => !f.disabled && f.kind === 'unsupported')
      .map((f) => `  ${f.fn.name}: ${String(f.fn.trigger.type)} — not supported locally`),
    ...(o.catalog.functions.length === 0 ? ['  (none)'] : []),
    '',
  ];
}

/**
 * Start-up, in order: settings; the worker process, which loads the function modules (they register through its
 * @azure/functions-core); storage (Azurite if need be); the HTTP front; queue and timer listeners; the banner.
 */
async function start(host: Host, root: string, args: Args, env: Env): Promise<void> {
  const { logger } = host;
  const settings = readSettings(root, args, env, logger);
  // before the worker starts: it inherits the environment
  const messageKey = ensureMessageKey(root, env);
  const mainGlob = mainGlobOf(root, args, env);
  const files = expandGlob(root, mainGlob);
  if (files.length === 0)
    logger.warn('host', `no files match '${mainGlob}' under ${root} — did you run the build (npm run build)?`);
  const worker = new WorkerChannel({
    workerPath: workerPath(),
    execArgv: process.execArgv,
    init: { type: 'init', root, files, logLevel: logger.minLevel },
    logger,
    onFatal: (reason) => {
      logger.error('host', reason);
      void host.shutdown('worker failure', 1);
    },
  });
  host.channel = worker;
  const catalog = await catalogOf(await worker.start(), env, settings, logger);
  const { storage, note: storageNote } = await prepareStorage(host, root, settings, env);
  const s: Started = {
    host,
    worker,
    settings,
    env,
    active: catalog.functions.filter((f) => !f.disabled),
    outputs: {
      clients: new QueueClients(),
      env,
      encoding: settings.hostJson.queues.messageEncoding,
      // the SharedQueueWatcher: a queue output wakes this host's listener of that queue (outputs.ts)
      enqueued: (queueName) => {
        for (const l of host.queueListeners) if (l.queueName === queueName) l.notify();
      },
    },
  };
  const http = await startHttp(s);
  const queueLines = await createQueueListeners(s);
  const timerLines = createTimerListeners(s);
  logger.print(
    [
      ...bannerHeader({ s, root, mainGlob, files, storage, storageNote, messageKey }),
      ...bannerFunctions({
        catalog,
        http: http.functions,
        baseUrl: http.baseUrl,
        routePrefix: settings.hostJson.routePrefix,
        keysOn: settings.keysOn,
        queueLines,
        timerLines,
      }),
    ].join('\n'),
  );
  for (const l of host.queueListeners) l.start();
  for (const t of host.timerListeners) t.start();
  logger.print(`Host listening on ${http.baseUrl} (Ctrl+C to stop)`);
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({ options: OPTIONS, strict: true });
  if (args.help) {
    process.stdout.write(HELP);
    return;
  }
  const env = process.env;
  const host = new Host(new HostLogger('information'), env);
  host.handleProcessEvents();
  try {
    await start(host, resolve(args.root ?? env.FUNCTIONS_APP_ROOT ?? process.cwd()), args, env);
  } catch (err) {
    if (err instanceof HostConfigError) host.logger.error('host', err.message);
    else
      host.logger.error(
        'host',
        `start-up failed: ${err instanceof Error && err.stack ? err.stack : describeError(err)}`,
      );
    await host.shutdown('start-up failed', 1);
  }
}

void main();
