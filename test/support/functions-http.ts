/**
 * HTTP-trigger inputs for calling a function's handler in-process, as the Functions host would: an
 * InvocationContext that drops its log, and an HttpRequest on the local host's `/api/` base.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';

export const API_BASE = 'http://127.0.0.1:7071/api/';

export const ctx = (): InvocationContext =>
  new InvocationContext({ functionName: 'test', invocationId: 'test', logHandler: () => undefined });

export const request = (
  method: string,
  path: string,
  o: { body?: string; headers?: Record<string, string>; params?: Record<string, string> } = {},
): HttpRequest =>
  new HttpRequest({
    method,
    url: `${API_BASE}${path}`,
    headers: o.headers ?? {},
    params: o.params ?? {},
    ...(o.body !== undefined ? { body: { string: o.body } } : {}),
  });
