/** `--json` on failure: the error as a JSON object on stdout, for the CLI's local and remote commands alike. */
import { errorCode, errorMessage } from '../errors.js';
import type { Io } from './io.js';

/** `--json`: a failure as `{ "error": { "code", "message" } }` on stdout too (the human line stays on stderr). */
export function jsonError(err: unknown, io: Pick<Io, 'stdout'>, redact: (t: string) => string = (t) => t): void {
  const code = (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? 'USAGE' : errorCode(err);
  io.stdout.write(`${JSON.stringify({ error: { code, message: redact(errorMessage(err)) } }, null, 2)}\n`);
}
