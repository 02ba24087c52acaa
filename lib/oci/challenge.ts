/**
 * `WWW-Authenticate` parsing (RFC 7235 §4.1, RFC 6750 §3): the registry's 401 says how to authenticate.
 *
 * ```text
 * WWW-Authenticate = 1#challenge
 * challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
 * auth-param       = token BWS "=" BWS ( token / quoted-string )
 * token68          = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
 * ```
 *
 * Why a tokenizer and not a regex: one header may carry several challenges separated by the same comma that
 * separates parameters (`Basic realm="x", Bearer realm="y",service="z"`), and quoted values contain commas
 * (`scope="repository:a:pull,push"`) and escaped quotes. An element is a new challenge exactly when it is a
 * token *not* followed by "=". go-containerregistry's `authchallenge` (ported from distribution) reads only
 * the first challenge of each header; this parser reads all of them, because undici and `fetch` join repeated
 * headers into one comma-separated value.
 *
 * The parser is lenient, since a registry that sends a slightly malformed challenge still expects to be
 * answered: unquoted values may contain any character but whitespace, "," and '"' (some servers send
 * `realm=https://…` unquoted), an unterminated quoted string runs to the end of the header, and elements
 * it cannot make sense of are skipped up to the next ",". It never throws.
 *
 * References:
 *   - https://www.rfc-editor.org/rfc/rfc7235#section-4.1, https://www.rfc-editor.org/rfc/rfc6750#section-3
 *   - distribution `docs/spec/auth/token.md` (challenge and multi-scope examples); research oci.md §6.1, pitfall 18
 *
 * @module
 */

/** One authentication challenge from a `WWW-Authenticate` header. */
export interface Challenge {
  /** Auth scheme, lowercased (schemes are case-insensitive): `bearer`, `basic`, … */
  scheme: string;
  /**
   * Parameters with lowercased names; values exactly as sent (quotes removed, escapes resolved).
   * A token68 credential (`Negotiate abc==`) is stored under `token68`. When a name repeats, the first wins.
   */
  params: Record<string, string>;
}

/**
 * Parses every challenge in one or more `WWW-Authenticate` header values, in order.
 * Accepts what HTTP clients hand out: a string (possibly several joined challenges), an array of
 * header lines (Node's `IncomingHttpHeaders`, undici `request`), or nothing.
 */
export function parseChallenges(headerValues: string | string[] | null | undefined): Challenge[] {
  if (headerValues === null || headerValues === undefined) return [];
  const values = typeof headerValues === 'string' ? [headerValues] : headerValues;
  return values.flatMap(parseHeader);
}

/**
 * Splits a `scope` parameter into its scopes. A single `scope` value may name several resources separated by
 * spaces (`repository:a:pull repository:b:pull,push`, distribution token spec); each must be requested from the
 * token endpoint as its own `scope=` query parameter. Colons are not split: resource names may contain
 * `host:port/`. Exact duplicates are dropped, order is kept (the first scope matters to some registries).
 */
export function parseScopes(scope: string | undefined): string[] {
  if (scope === undefined) return [];
  return [...new Set(scope.split(/\s+/).filter((s) => s !== ''))];
}

// ---------------------------------------------------------------------------------------------------------------

/** RFC 7230 tchar: the characters of a token (scheme or parameter name). */
const TCHAR = /^[!#$%&'*+.^_`|~0-9A-Za-z-]$/;
/** A token68 candidate at the start of the remaining input (RFC 7235 §2.1). */
const TOKEN68 = /^[A-Za-z0-9._~+/-]+=*/;

interface PendingChallenge {
  scheme: string;
  params: Map<string, string>;
}

function parseHeader(header: string): Challenge[] {
  const pending: PendingChallenge[] = [];
  let current: PendingChallenge | undefined;
  let i = 0;

  const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t';
  const skipSpace = (): void => {
    while (isSpace(header[i])) i += 1;
  };
  const readToken = (): string => {
    const start = i;
    while (i < header.length && TCHAR.test(header[i] ?? '')) i += 1;
    return header.slice(start, i);
  };
  /** Skips a malformed element: everything up to (not including) the next ",". */
  const skipElement = (): void => {
    const comma = header.indexOf(',', i);
    i = comma === -1 ? header.length : comma;
  };
  const readValue = (): string => {
    if (header[i] !== '"') {
      const start = i;
      while (i < header.length && !/[\s,"]/.test(header[i] ?? '')) i += 1;
      return header.slice(start, i);
    }
    // quoted-string: "\" escapes the next character (RFC 7230 §3.2.6 quoted-pair).
    i += 1;
    let value = '';
    while (i < header.length) {
      const c = header[i] ?? '';
      i += 1;
      if (c === '"') return value;
      if (c === '\\' && i < header.length) {
        value += header[i] ?? '';
        i += 1;
      } else {
        value += c;
      }
    }
    return value; // unterminated: take what there is
  };

  while (i < header.length) {
    // Empty list elements and whitespace around commas are allowed (RFC 7230 §7).
    while (header[i] === ',' || /\s/.test(header[i] ?? '')) i += 1;
    if (i >= header.length) break;

    const token = readToken();
    if (token === '') {
      skipElement();
      continue;
    }
    const afterToken = i;
    skipSpace();

    if (header[i] === '=') {
      // auth-param of the current challenge.
      i += 1;
      skipSpace();
      const value = readValue();
      const name = token.toLowerCase();
      // A parameter before any scheme has no challenge to belong to; it is dropped.
      if (current !== undefined && !current.params.has(name)) current.params.set(name, value);
      skipSpace();
      if (i < header.length && header[i] !== ',') skipElement();
      continue;
    }

    // A token not followed by "=" starts a new challenge.
    current = { scheme: token.toLowerCase(), params: new Map() };
    pending.push(current);
    i = afterToken;
    if (!isSpace(header[i])) {
      if (i < header.length && header[i] !== ',') skipElement(); // e.g. `Bearer"x"`: keep the scheme, drop the junk
      continue;
    }
    skipSpace();
    // token68 is the whole rest of the element: `Negotiate abc==` but not `Bearer realm="x"`.
    const rest = header.slice(i);
    const match = TOKEN68.exec(rest);
    if (match !== null) {
      let end = i + match[0].length;
      while (isSpace(header[end])) end += 1;
      if (end >= header.length || header[end] === ',') {
        current.params.set('token68', match[0]);
        i = end;
      }
    }
  }

  return pending.map((c) => ({ scheme: c.scheme, params: Object.fromEntries(c.params) }));
}
