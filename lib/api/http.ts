/**
 * What every HTTP function shares: error answers in the Azure REST API guidelines' shape
 * (`{error: {code, message, target}}` plus the `x-ms-error-code` header carrying the same code:
 * https://github.com/microsoft/api-guidelines/blob/vNext/azure/Guidelines.md#handling-errors), the URLs of
 * the API as the caller reached it, and the 503 for a setting whose Key Vault reference is not resolved.
 */
import type { HttpResponseInit, InvocationContext } from '@azure/functions';
import { KeyVaultReferenceError } from '../config.js';
import { RequestError } from '../request/request.js';

/** Clients should poll no faster than this. */
export const RETRY_AFTER_SECONDS = 5;

export function errorResponse(
  err: RequestError,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): HttpResponseInit {
  return {
    status: err.status,
    headers: { 'x-ms-error-code': err.code, ...headers },
    jsonBody: { ...err.toJSON(), ...extra },
  };
}

/** `application/json`, with or without parameters (`; charset=utf-8`). */
export function isJson(contentType: string | null): boolean {
  return /^application\/json\s*(;|$)/i.test(contentType?.trim() ?? '');
}

/**
 * The API's base URL (`…/api/`) from a request URL whose path ends with `route` (`imports`, `ui`…) plus, for
 * routes with parameters, any further segments: what status URLs and next links are built on.
 */
export function apiBase(requestUrl: string, route: string): string {
  const url = new URL(requestUrl);
  const at = url.pathname.lastIndexOf(`/${route}`);
  return `${url.origin}${at >= 0 ? url.pathname.slice(0, at + 1) : '/api/'}`;
}

export function statusUrl(base: string, id: string): string {
  return `${base}imports/${id}`;
}

/** Import ids are UUIDs; anything else is not found (and never reaches storage). */
export function importId(raw: string | undefined): string {
  const id = raw ?? '';
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
    throw new RequestError(404, 'NOT_FOUND', `no import with id "${id.slice(0, 64)}"`, 'id');
  }
  return id.toLowerCase();
}

/**
 * A setting still holds its Key Vault reference (first start, role assignment not applied yet): 503 and
 * Retry-After, so the caller tries again; the log says what to check, the caller learns only which setting.
 * Any other error is rethrown (the host answers an empty 500).
 */
export function unavailable(err: unknown, context: InvocationContext): HttpResponseInit {
  if (err instanceof RequestError) return errorResponse(err);
  if (!(err instanceof KeyVaultReferenceError)) throw err;
  context.error(err.message);
  return errorResponse(
    new RequestError(
      503,
      err.code,
      `the app's setting ${err.setting} is not available yet (its Key Vault reference is not resolved); try again later`,
      err.setting,
    ),
    {},
    { 'retry-after': '30' },
  );
}
