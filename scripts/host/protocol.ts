/**
 * Messages between the host process and its worker process (Node IPC, `serialization: 'advanced'`, so
 * `Uint8Array` bodies cross as bytes). The shape follows the Functions host ↔ language worker gRPC
 * protocol in miniature (azure-functions-language-worker-protobuf `FunctionRpc.proto`):
 *
 *   host → worker   init (≈ WorkerInitRequest + FunctionsMetadataRequest), invoke (InvocationRequest),
 *                   terminate (WorkerTerminate)
 *   worker → host   indexed (FunctionMetadataResponse), initFailed, result / failed (InvocationResponse)
 */
import type { FunctionInfo, RpcInvocationResponse } from './core-api.js';
import type { InvocationInput, SerializedError } from './invoke.js';
import type { HostLogLevel } from './settings.js';

export interface InitMessage {
  readonly type: 'init';
  /** Function app root (appStart hooks get it as `functionAppDirectory`). */
  readonly root: string;
  /** The function modules to import (package.json `main`, expanded). */
  readonly files: readonly string[];
  readonly logLevel: HostLogLevel;
}

export type HostToWorker =
  | InitMessage
  | { readonly type: 'invoke'; readonly id: string; readonly functionName: string; readonly input: InvocationInput }
  | { readonly type: 'terminate' };

export type WorkerToHost =
  | {
      readonly type: 'indexed';
      readonly functions: readonly FunctionInfo[];
      readonly programmingModel?: string;
      /** The app called `app.setup({ enableHttpStream: true })` (not supported by the local host). */
      readonly httpStreamRequested: boolean;
    }
  | { readonly type: 'initFailed'; readonly message: string }
  | { readonly type: 'result'; readonly id: string; readonly response: RpcInvocationResponse }
  | { readonly type: 'failed'; readonly id: string; readonly error: SerializedError };
