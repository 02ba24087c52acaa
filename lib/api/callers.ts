/**
 * Who may call the HTTP functions (AUTH_MODE):
 * - `keys` (default): the functions are registered `authLevel: 'function'` and the Functions host checks the key;
 *   the handlers see no caller.
 * - `entra`: the functions are registered `authLevel: 'anonymous'` (a function key opens nothing) and every
 *   handler is wrapped by `guarded`, which demands an Entra ID bearer token with the right app role
 *   (lib/api/entra-auth.ts). A client-sent `X-MS-CLIENT-PRINCIPAL*` header is never read: App Service removes
 *   those only when its own authentication is on, so here anyone could send one.
 *
 * An AUTH_MODE that is neither keeps `authLevel: 'function'` and refuses every call with 503 INVALID_SETTING: a
 * typo fails closed.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { callerAuthOf, ConfigError, type CallerAuth } from '../config.js';
import { RequestError } from '../request/request.js';
import { AuthorityError, CallerError, EntraValidator, type Access, type Caller } from './entra-auth.js';
import { errorResponse } from './http.js';

type Env = Record<string, string | undefined>;

/** A handler that learns its caller (undefined with AUTH_MODE=keys). */
export type CallerHandler = (
  request: HttpRequest,
  context: InvocationContext,
  caller?: Caller,
) => Promise<HttpResponseInit>;

/** The `authLevel` every HTTP function registers with: read once, when the app registers its functions. */
export function httpAuthLevel(env: Env = process.env): 'function' | 'anonymous' {
  return env.AUTH_MODE?.trim().toLowerCase() === 'entra' ? 'anonymous' : 'function';
}

let cached: { key: string; validator: EntraValidator } | undefined;

/** One validator per process (its key cache is what makes a token check cheap), rebuilt if the settings change. */
function validatorFor(auth: Extract<CallerAuth, { mode: 'entra' }>): EntraValidator {
  const key = JSON.stringify(auth);
  if (cached?.key !== key) cached = { key, validator: new EntraValidator(auth) };
  return cached.validator;
}

/** `who` for logs: object ID and client app ID, never the token. */
export function describeCaller(caller: Caller | undefined): string {
  return caller ? `oid=${caller.oid ?? '-'} appid=${caller.appid ?? '-'}` : 'function key';
}

function refused(err: CallerError): HttpResponseInit {
  return errorResponse(
    new RequestError(err.status, err.code, err.message, 'Authorization'),
    {},
    { 'www-authenticate': err.wwwAuthenticate },
  );
}

/** Wraps `handler` so that with AUTH_MODE=entra it runs only for a token holding the role `access` needs. */
export function guarded(
  access: Access,
  handler: CallerHandler,
  env: Env = process.env,
): (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  return async (request, context) => {
    let auth: CallerAuth;
    try {
      auth = callerAuthOf(env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      context.error(err.message);
      return errorResponse(
        new RequestError(
          503,
          err.code,
          `the app's setting ${err.setting} is not valid; an operator must fix it`,
          err.setting,
        ),
      );
    }
    if (auth.mode === 'keys') return handler(request, context);
    let caller: Caller;
    try {
      caller = await validatorFor(auth).check(request.headers.get('authorization'), access);
    } catch (err) {
      if (err instanceof CallerError) {
        context.warn(
          `${request.method} ${new URL(request.url).pathname} refused: ${err.status} [${err.code}] ${err.message}`,
        );
        return refused(err);
      }
      if (!(err instanceof AuthorityError)) throw err;
      context.error(err.message);
      return errorResponse(
        new RequestError(
          503,
          'AUTHORITY_UNAVAILABLE',
          'the app could not read its Entra ID signing keys; try again later',
          'Authorization',
        ),
        {},
        { 'retry-after': '30' },
      );
    }
    context.info(`${request.method} ${new URL(request.url).pathname} by ${describeCaller(caller)}`);
    return handler(request, context, caller);
  };
}
