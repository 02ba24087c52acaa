/**
 * One invocation, as the Node.js worker's InvocationHandler runs it: the programming model builds the
 * handler's arguments (the library's real `HttpRequest`, parsed queue payload, camel-cased timer object,
 * `InvocationContext` with triggerMetadata), preInvocation hooks, the handler, postInvocation hooks, then
 * the programming model converts the result (`HttpResponseInit` → RPC http data, extra outputs, …).
 *
 * `runInvocation` runs in the worker process (worker.ts). The host side (worker-channel.ts) only sends
 * `InvocationInput` and receives the RPC response or the error, and owns the timeout.
 */
import { randomBytes } from 'node:crypto';
import type {
  CoreInvocationContext,
  FunctionsRuntime,
  RegisteredFunction,
  RpcInvocationRequest,
  RpcInvocationResponse,
  RpcLogCategory,
  RpcLogLevel,
  RpcParameterBinding,
  RpcTypedData,
} from './core-api.js';
import { toHostLevel } from './log.js';

/** The invocation outlived host.json `functionTimeout` (the message the Functions host logs). */
export class FunctionTimeoutError extends Error {
  override readonly name = 'FunctionTimeoutError';
}

/** The worker process died (exit, crash, kill) while the invocation ran: its result is lost. */
export class WorkerExitError extends Error {
  override readonly name = 'WorkerExitError';
}

/** An error as it crosses the IPC channel from the worker (stack included: the host logs it, never returns it). */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

/** Rebuilds a worker-side error in the host, keeping the worker's stack for the log. */
export class WorkerInvocationError extends Error {
  override readonly name: string;
  constructor(e: SerializedError) {
    super(e.message);
    this.name = e.name;
    if (e.stack) this.stack = e.stack;
  }
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) return { name: err.name, message: err.message, ...(err.stack ? { stack: err.stack } : {}) };
  let text: string;
  try {
    text = typeof err === 'string' ? err : JSON.stringify(err);
  } catch {
    text = String(err);
  }
  return { name: 'Error', message: `non-Error thrown: ${String(text).slice(0, 500)}` };
}

export interface InvocationInput {
  /** The trigger's value (binding name is filled in). */
  readonly trigger: RpcTypedData;
  /** RPC trigger metadata (keys PascalCase as the host sends them; the library camel-cases them). */
  readonly triggerMetadata?: Record<string, RpcTypedData>;
  readonly retryContext?: RpcInvocationRequest['retryContext'];
  /** Reuse an id (e.g. for the log line); a new UUID otherwise. */
  readonly invocationId?: string;
}

export interface InvocationResult {
  readonly invocationId: string;
  readonly response: RpcInvocationResponse;
}

/** Runs an invocation in the worker process (WorkerChannel.invoke). */
export type Invoker = (
  functionName: string,
  input: InvocationInput,
  timeoutMs: number | null,
) => Promise<InvocationResult>;

/** Tracks every running invocation so shutdown can wait for them. */
export class InFlight {
  readonly #running = new Set<Promise<unknown>>();
  track<T>(p: Promise<T>): Promise<T> {
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.#running.add(settled);
    void settled.then(() => this.#running.delete(settled));
    return p;
  }
  get size(): number {
    return this.#running.size;
  }
  /** Resolves true when all finished, false on timeout. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#running.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...this.#running]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, left);
        }),
      ]);
      clearTimeout(timer);
    }
    return true;
  }
}

function traceParent(): string {
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
}

/** `hh:mm:ss`, as the Functions host writes a TimeSpan in its timeout message. */
export function formatMs(ms: number): string {
  const s = Math.round(ms / 1000);
  const hh = String(Math.floor(s / 3600)).padStart(2, '0');
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return `${hh}:${mm}:${ss}`;
}

export async function runInvocation(
  runtime: FunctionsRuntime,
  fn: RegisteredFunction,
  invocationId: string,
  input: InvocationInput,
): Promise<RpcInvocationResponse> {
  const model = runtime.programmingModel;
  if (!model)
    throw new Error(
      'No programming model was registered (is @azure/functions v4 installed and imported by the function modules?)',
    );

  const inputData: RpcParameterBinding[] = [{ name: fn.triggerName, data: input.trigger }];
  const request: RpcInvocationRequest = {
    invocationId,
    functionId: fn.functionId,
    inputData,
    triggerMetadata: input.triggerMetadata ?? {},
    traceContext: { traceParent: traceParent(), traceState: '', attributes: {} },
    ...(input.retryContext ? { retryContext: input.retryContext } : {}),
  };
  const coreCtx: CoreInvocationContext = {
    invocationId,
    request,
    metadata: fn.metadata,
    state: undefined,
    log(level: RpcLogLevel, category: RpcLogCategory, message: string): void {
      const entry = { level, message, category };
      if (category === 'user') runtime.runLogHooks(entry);
      runtime.logger.log(
        toHostLevel(entry.level),
        category === 'user' ? fn.name : `${fn.name} (system)`,
        entry.message,
      );
    },
  };

  const invocationModel = await model.getInvocationModel(coreCtx);
  const hookData: Record<string, unknown> = {};
  const args = await invocationModel.getArguments();
  const context = args.context;
  let inputs = args.inputs;

  const pre: Record<string, unknown> = {
    hookData,
    appHookData: runtime.appHookData,
    invocationContext: context,
    functionCallback: fn.callback,
    inputs,
  };
  coreCtx.state = 'preInvocationHooks';
  try {
    await runtime.executeHooks('preInvocation', pre);
  } finally {
    coreCtx.state = undefined;
  }
  inputs = pre.inputs as unknown[];
  const callback = pre.functionCallback as RegisteredFunction['callback'];

  const post: Record<string, unknown> = {
    hookData,
    appHookData: runtime.appHookData,
    invocationContext: context,
    inputs,
    result: null,
    error: null,
  };
  coreCtx.state = 'invocation';
  try {
    post.result = await invocationModel.invokeFunction(context, inputs, callback);
  } catch (err) {
    post.error = err;
  } finally {
    coreCtx.state = undefined;
  }

  coreCtx.state = 'postInvocationHooks';
  try {
    await runtime.executeHooks('postInvocation', post);
  } finally {
    coreCtx.state = undefined;
  }
  // A postInvocation hook may clear or set the error, as with the worker.
  if (post.error !== null && post.error !== undefined) throw post.error;
  return invocationModel.getResponse(context, post.result);
}
