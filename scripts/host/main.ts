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
  applyLocalSettings, DEV_PORTS, HOST_JSON_OVERRIDE_PREFIX, HostConfigError, readHostJson, readLocalSettings, resolveStorageConnection,
  validateQueueName, type StorageConnection,
} from './settings.js';
import { QueueClients } from './storage.js';
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
  if (!Number.isInteger(n) || n < min || n > max) throw new HostConfigError(`${name} must be an integer between ${min} and ${max} (got '${raw}')`);
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

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      root: { type: 'string' },
      main: { type: 'string' },
      'host-json': { type: 'string' },
      'local-settings': { type: 'string' },
      port: { type: 'string' },
      'no-azurite': { type: 'boolean' },
      'setting-defaults': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (args.help) {
    process.stdout.write(HELP);
    return;
  }
  const env = process.env;
  const logger = new HostLogger('information');
  const root = resolve(args.root ?? env.FUNCTIONS_APP_ROOT ?? process.cwd());

  let azurite: StartedAzurite | undefined;
  let server: Server | undefined;
  const queueListeners: QueueListener[] = [];
  const timerListeners: TimerListener[] = [];
  const inFlight = new InFlight();
  let channel: WorkerChannel | undefined;
  let shuttingDown = false;

  const shutdown = async (reason: string, code: number): Promise<never> => {
    if (shuttingDown) {
      logger.warn('host', `${reason} again: exiting now`);
      azurite?.child.kill('SIGTERM');
      process.exit(code || 1);
    }
    shuttingDown = true;
    const graceMs = intSetting('LOCAL_HOST_SHUTDOWN_GRACE_SECONDS', env.LOCAL_HOST_SHUTDOWN_GRACE_SECONDS, 5, 0, 600) * 1000;
    logger.info('host', `${reason}: stopping (running invocations get up to ${graceMs / 1000}s)`);
    server?.close();
    server?.closeIdleConnections();
    for (const t of timerListeners) t.stop();
    await Promise.all(queueListeners.map((q) => q.stop()));
    if (!(await inFlight.drain(graceMs))) {
      logger.warn('host', `${inFlight.size} invocation(s) still running — abandoned; their queue messages reappear when the lease expires`);
    }
    server?.closeAllConnections();
    // appTerminate hooks run in the worker, which then exits (killed after a grace).
    await channel?.stop();
    if (azurite) {
      logger.info('host', 'stopping Azurite');
      await azurite.stop();
    }
    logger.info('host', 'stopped');
    process.exit(code);
  };

  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  // The app's code runs in the worker process; these catch bugs of the host itself.
  process.on('unhandledRejection', (reason) => {
    logger.error('host', `unhandled promise rejection in the host process: ${reason instanceof Error && reason.stack ? reason.stack : describeError(reason)}`);
  });
  process.on('uncaughtException', (err) => {
    logger.error('host', `uncaught exception in the host process; stopping: ${err.stack ?? describeError(err)}`);
    void shutdown('uncaught exception', 1);
  });

  try {
    // --- configuration -------------------------------------------------------------------------
    const localSettingsPath = resolve(root, args['local-settings'] ?? env.LOCAL_SETTINGS_JSON ?? 'local.settings.json');
    const local = readLocalSettings(localSettingsPath);
    const applied = applyLocalSettings(local, env);
    const hostJson = readHostJson(resolve(root, args['host-json'] ?? env.HOST_JSON ?? 'host.json'), env);
    logger.minLevel = env.LOCAL_HOST_LOG_LEVEL ? toHostLevel(env.LOCAL_HOST_LOG_LEVEL.toLowerCase()) : hostJson.logLevel;
    const leaseSeconds = intSetting('LOCAL_HOST_QUEUE_LEASE_SECONDS', env.LOCAL_HOST_QUEUE_LEASE_SECONDS, 600, 1, 3600);
    const maxBodyBytes = intSetting('FUNCTIONS_REQUEST_BODY_SIZE_LIMIT', env.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, 104_857_600, 1, Number.MAX_SAFE_INTEGER);
    const port = intSetting('port', args.port ?? env.FUNCTIONS_HTTP_PORT ?? env.PORT ?? (local.localHttpPort !== undefined ? String(local.localHttpPort) : undefined), 7071, 0, 65535);
    const noAzurite = args['no-azurite'] === true || /^(0|false|no)$/i.test(env.LOCAL_HOST_AZURITE ?? '');
    const settingDefaults = args['setting-defaults'] === true || /^(1|true|yes)$/i.test(env.LOCAL_HOST_SETTING_DEFAULTS ?? '');
    const keys = { functionKey: env.LOCAL_HOST_FUNCTION_KEY || undefined, masterKey: env.LOCAL_HOST_MASTER_KEY || undefined };
    const keysOn = keys.functionKey !== undefined || keys.masterKey !== undefined;
    // before the worker starts: it inherits the environment
    const messageKey = ensureMessageKey(root, env);

    // --- the worker process loads the function modules (they register through its @azure/functions-core)
    let mainGlob = args.main ?? env.FUNCTIONS_MAIN;
    if (!mainGlob) {
      const pkgPath = resolve(root, 'package.json');
      if (!existsSync(pkgPath)) throw new HostConfigError(`${pkgPath} not found (set --root, or --main)`);
      mainGlob = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { main?: string }).main;
      if (!mainGlob) throw new HostConfigError(`${pkgPath} has no "main" (the glob of function modules, e.g. dist/functions/*.js)`);
    }
    const files = expandGlob(root, mainGlob);
    if (files.length === 0) logger.warn('host', `no files match '${mainGlob}' under ${root} — did you run the build (npm run build)?`);
    channel = new WorkerChannel({
      workerPath: workerPath(),
      execArgv: process.execArgv,
      init: { type: 'init', root, files, logLevel: logger.minLevel },
      logger,
      onFatal: (reason) => {
        logger.error('host', reason);
        void shutdown('worker failure', 1);
      },
    });
    const registered = await channel.start();
    const worker = channel;

    let catalog;
    try {
      catalog = buildCatalog(registered, env, settingDefaults ? await loadSettingDefaults() : undefined);
    } catch (err) {
      if (err instanceof HostConfigError && !settingDefaults) {
        throw new HostConfigError(`${err.message}. (The local host refuses it as Azure does; --setting-defaults / LOCAL_HOST_SETTING_DEFAULTS=1 takes lib/config.ts defaults instead.)`);
      }
      throw err;
    }
    for (const w of catalog.warnings) logger.warn('host', w);
    for (const name of catalog.defaulted) logger.warn('host', `app setting ${name} is not set; using its documented default (lib/config.ts) because of --setting-defaults — Azure would refuse to start the function`);
    const active = catalog.functions.filter((f) => !f.disabled);
    const invoke = worker.invoke.bind(worker);

    // --- storage ---------------------------------------------------------------------------------
    const storage = resolveStorageConnection('AzureWebJobsStorage', env);
    let storageNote = '';
    if (storage.isDevelopmentStorage) {
      const up = await Promise.all([DEV_PORTS.blob, DEV_PORTS.queue, DEV_PORTS.table].map((p) => isListening(p)));
      if (up.every(Boolean)) {
        storageNote = ' (Azurite already running)';
      } else if (noAzurite) {
        storageNote = ' (Azurite not running; --no-azurite given)';
        logger.warn('host', 'development storage is not reachable and Azurite start is disabled: queue triggers will fail until it runs (npm run azurite)');
      } else if (up.some(Boolean)) {
        throw new HostConfigError(`some of the Azurite ports ${DEV_PORTS.blob}/${DEV_PORTS.queue}/${DEV_PORTS.table} are in use by something else; free them or set AzureWebJobsStorage`);
      } else {
        logger.info('host', 'development storage not running: starting Azurite (data in .azurite/)');
        azurite = await startAzurite(root);
        storageNote = ` (Azurite started by the host, data in ${resolve(root, '.azurite')}, log ${azurite.logFile})`;
      }
    }
    const clients = new QueueClients();
    const outputs = { clients, env, encoding: hostJson.queues.messageEncoding };

    // --- HTTP --------------------------------------------------------------------------------------
    const httpFunctions: { hosted: HostedFunction; http: HttpFunction }[] = active
      .filter((f) => f.kind === 'http')
      .map((hosted) => ({ hosted, http: toHttpFunction(hosted.fn, hosted.trigger) }));
    server = createHttpHost({
      invoke, functions: httpFunctions.map((h) => h.http), routePrefix: hostJson.routePrefix, maxBodyBytes,
      functionTimeoutMs: hostJson.functionTimeoutMs, logger, inFlight, keys,
      status: () => ({ worker: { pid: worker.pid, restarts: worker.restarts, running: worker.running } }),
    });
    let actualPort: number;
    try {
      actualPort = await listen(server, port);
    } catch (err) {
      throw new HostConfigError(`cannot listen on 127.0.0.1:${port}: ${describeError(err)} (use --port or FUNCTIONS_HTTP_PORT)`);
    }
    const baseUrl = `http://127.0.0.1:${actualPort}`;
    const prefix = hostJson.routePrefix ? `/${hostJson.routePrefix}` : '';

    // --- queues --------------------------------------------------------------------------------------
    const queueLines: string[] = [];
    for (const hosted of active.filter((f) => f.kind === 'queue')) {
      const queueName = String(hosted.trigger.queueName ?? '');
      validateQueueName(queueName, `function '${hosted.fn.name}' queueName`);
      if (queueName.length > 56) throw new HostConfigError(`function '${hosted.fn.name}': queue name '${queueName}' leaves no room for the '-poison' suffix (max 56 characters)`);
      const conn = resolveStorageConnection(typeof hosted.trigger.connection === 'string' ? hosted.trigger.connection : undefined, env);
      const [queue, poison] = await Promise.all([clients.queue(conn, queueName), clients.queue(conn, `${queueName}-poison`)]);
      queueListeners.push(new QueueListener({
        invoke, hosted, queueName, queue, poison, options: hostJson.queues, leaseSeconds,
        functionTimeoutMs: hostJson.functionTimeoutMs, logger, inFlight, outputs,
      }));
      queueLines.push(`  ${hosted.fn.name}: queueTrigger '${queueName}' (poison '${queueName}-poison') on ${conn.queueEndpoint}`);
    }

    // --- timers ----------------------------------------------------------------------------------------
    const timerLines: string[] = [];
    for (const hosted of active.filter((f) => f.kind === 'timer')) {
      const expression = String(hosted.trigger.schedule ?? '');
      let schedule;
      try {
        schedule = parseSchedule(expression);
      } catch (err) {
        throw new HostConfigError(`function '${hosted.fn.name}' schedule: ${(err as Error).message}`);
      }
      const listener = new TimerListener({
        invoke, hosted, schedule, runOnStartup: hosted.trigger.runOnStartup === true,
        functionTimeoutMs: hostJson.functionTimeoutMs, logger, inFlight, outputs,
      });
      timerListeners.push(listener);
      const next = listener.nextOccurrence();
      timerLines.push(`  ${hosted.fn.name}: timerTrigger ${schedule.describe()}${hosted.trigger.runOnStartup === true ? ', runOnStartup' : ''}, next ${next ? next.toISOString() : 'never'}`);
    }

    // --- banner ----------------------------------------------------------------------------------------
    const q = hostJson.queues;
    const lines = [
      '',
      `oci-import local Functions host — worker process pid ${String(worker.pid)}`,
      `  app root:    ${root}`,
      `  functions:   ${mainGlob} (${files.length} file${files.length === 1 ? '' : 's'})`,
      `  settings:    ${local.path ? `${local.path} (${applied.length} value(s) applied; environment wins)` : 'no local.settings.json'}`,
      `  host.json:   ${hostJson.path}: queues batchSize ${q.batchSize}, newBatchThreshold ${q.newBatchThreshold}, maxDequeueCount ${q.maxDequeueCount}, visibilityTimeout ${fmtSpan(q.visibilityTimeoutMs)}, maxPollingInterval ${fmtSpan(q.maxPollingIntervalMs)}, messageEncoding ${q.messageEncoding}; functionTimeout ${hostJson.functionTimeoutMs === null ? 'unbounded' : fmtSpan(hostJson.functionTimeoutMs)}; queue lease ${leaseSeconds}s renewed at half${hostJson.overridden.length ? `; overridden by ${HOST_JSON_OVERRIDE_PREFIX}*: ${hostJson.overridden.join(', ')}` : ''}`,
      `  http:        body cap ${maxBodyBytes} bytes (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT); keys ${keysOn ? 'demanded for authLevel function/admin (LOCAL_HOST_FUNCTION_KEY / LOCAL_HOST_MASTER_KEY)' : 'not demanded (set LOCAL_HOST_FUNCTION_KEY to require them as Azure does)'}`,
      `  storage:     ${describeStorage(storage)}${storageNote}`,
      `  queue:       step messages authenticated with ${messageKey}`,
      '',
      'Functions:',
      ...httpFunctions.map(({ http }) => `  ${http.fn.name}: [${[...http.methods].join(',')}] ${baseUrl}${prefix}/${http.route.template.replace(/^\/+/, '')}${http.authLevel !== 'anonymous' ? `  (authLevel ${http.authLevel}${keysOn ? '' : ': no key configured, not enforced'})` : ''}`),
      ...queueLines,
      ...timerLines,
      ...catalog.functions.filter((f) => f.disabled).map((f) => `  ${f.fn.name}: disabled (AzureWebJobs.${f.fn.name}.Disabled)`),
      ...catalog.functions.filter((f) => !f.disabled && f.kind === 'unsupported').map((f) => `  ${f.fn.name}: ${String(f.fn.trigger.type)} — not supported locally`),
      ...(catalog.functions.length === 0 ? ['  (none)'] : []),
      '',
    ];
    logger.print(lines.join('\n'));

    for (const l of queueListeners) l.start();
    for (const t of timerListeners) t.start();
    logger.print(`Host listening on ${baseUrl} (Ctrl+C to stop)`);
  } catch (err) {
    if (err instanceof HostConfigError) logger.error('host', err.message);
    else logger.error('host', `start-up failed: ${err instanceof Error && err.stack ? err.stack : describeError(err)}`);
    await shutdown('start-up failed', 1);
  }
}

void main();
