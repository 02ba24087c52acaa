/**
 * The worker process: where the app's code runs, as the Node.js language worker runs it in Azure.
 *
 * The host process (main.ts) forks this file and talks to it over IPC (protocol.ts). Here, and only
 * here, `@azure/functions-core` is provided (core-api.ts), the function modules are imported (they
 * register through the real `@azure/functions` library), appStart hooks run, and every invocation runs
 * through the library's programming model (invoke.ts `runInvocation`).
 *
 * Process semantics mirror Azure/azure-functions-nodejs-worker `src/Worker.ts`:
 * - an uncaught exception is logged and the process exits with code 1; there is no
 *   `unhandledRejection` handler, so Node's default (`--unhandled-rejections=throw`) turns an unhandled
 *   promise rejection into an uncaught exception: a missing `await` kills the worker, as in Azure;
 * - when the host goes away (the IPC channel closes; in Azure the gRPC stream ends, `GrpcClient.ts`)
 *   the process exits;
 * - `terminate` runs appTerminate hooks and exits 0 (`src/eventHandlers/terminateWorker.ts`).
 * The host restarts the worker after a crash or a timeout (worker-channel.ts).
 */
import { pathToFileURL } from 'node:url';
import { FunctionsRuntime, installCoreApi, type FunctionInfo } from './core-api.js';
import { runInvocation, serializeError } from './invoke.js';
import { describeError, HostLogger } from './log.js';
import type { HostToWorker, InitMessage, WorkerToHost } from './protocol.js';

const logger = new HostLogger('information');
const runtime = new FunctionsRuntime(logger);

function send(message: WorkerToHost): void {
  if (!process.send) return;
  try {
    process.send(message);
  } catch (err) {
    // A result that cannot cross the channel (e.g. a function in it): report the failure instead.
    if (message.type === 'result')
      process.send({ type: 'failed', id: message.id, error: serializeError(err) } satisfies WorkerToHost);
    else throw err;
  }
}

process.on('uncaughtException', (err: unknown) => {
  logger.error(
    'worker',
    `Worker uncaught exception (the host restarts the worker; in Azure too): ${err instanceof Error && err.stack ? err.stack : describeError(err)}`,
  );
  process.exit(1);
});
process.on('disconnect', () => process.exit(0));

async function init(message: InitMessage): Promise<void> {
  logger.minLevel = message.logLevel;
  try {
    installCoreApi(runtime);
    for (const file of message.files) {
      try {
        await import(pathToFileURL(file).href);
      } catch (err) {
        throw new Error(
          `loading ${file} failed: ${err instanceof Error && err.stack ? err.stack : describeError(err)}`,
        );
      }
    }
    runtime.startupFinished = true;
    await runtime.executeHooks('appStart', {
      hookData: {},
      appHookData: runtime.appHookData,
      functionAppDirectory: message.root,
    });
  } catch (err) {
    send({ type: 'initFailed', message: err instanceof Error ? err.message : describeError(err) });
    return;
  }
  const functions: FunctionInfo[] = [...runtime.functions.values()].map((f) => ({
    name: f.name,
    metadata: f.metadata,
    triggerName: f.triggerName,
    trigger: f.trigger,
  }));
  const model = runtime.programmingModel;
  send({
    type: 'indexed',
    functions,
    httpStreamRequested: runtime.httpStreamRequested,
    ...(model ? { programmingModel: `${model.name} ${model.version}` } : {}),
  });
}

async function invoke(
  id: string,
  functionName: string,
  input: Extract<HostToWorker, { type: 'invoke' }>['input'],
): Promise<void> {
  const fn = [...runtime.functions.values()].find((f) => f.name === functionName);
  try {
    if (!fn) throw new Error(`no function named '${functionName}' is registered in the worker`);
    const response = await runInvocation(runtime, fn, input.invocationId ?? id, input);
    send({ type: 'result', id, response });
  } catch (err) {
    send({ type: 'failed', id, error: serializeError(err) });
  }
}

async function terminate(): Promise<void> {
  try {
    await runtime.executeHooks('appTerminate', { hookData: {}, appHookData: runtime.appHookData });
  } catch (err) {
    logger.warn('worker', `appTerminate hook failed: ${describeError(err)}`);
  }
  process.exit(0);
}

process.on('message', (raw: unknown) => {
  const message = raw as HostToWorker;
  switch (message.type) {
    case 'init':
      void init(message);
      break;
    case 'invoke':
      void invoke(message.id, message.functionName, message.input);
      break;
    case 'terminate':
      void terminate();
      break;
    default:
      logger.warn('worker', `unknown message from the host: ${String((message as { type?: unknown }).type)}`);
  }
});
