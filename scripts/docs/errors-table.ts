/**
 * docs/errors.md's table of error codes, generated from the catalogue (lib/error-codes.ts): `npm run docs:errors`
 * rewrites the part between the markers; test/unit/error-codes.test.ts fails when the file differs from what this
 * renders (a code added, changed or removed without running it).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, type CodeEntry } from '../../lib/error-codes.js';

export const BEGIN = '<!-- error-codes:begin (npm run docs:errors) -->';
export const END = '<!-- error-codes:end -->';

const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** The markdown table: code, side, temporary, HTTP status, meaning — one row per catalogued code, in its order. */
export function renderErrorTable(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, e]: [string, CodeEntry]) => {
    const http = e.http === undefined ? '' : Array.isArray(e.http) ? e.http.join(', ') : String(e.http);
    const temporary = e.temporary === 'varies' ? 'varies' : e.temporary ? 'yes' : 'no';
    return `| \`${code}\` | ${e.side} | ${temporary} | ${http} | ${cell(e.meaning)} |`;
  });
  return [
    '| Code | Side | Temporary | HTTP | Meaning |',
    '|---|---|---|---|---|',
    ...rows,
    '| `HTTP_<status>` | registry | varies | | A registry answered `<status>` with no code of ours (its own code, if any, is in the message). |',
  ].join('\n');
}

/** `text` with the part between the markers replaced by the table. */
export function withErrorTable(text: string): string {
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`docs/errors.md lacks the markers ${BEGIN} … ${END}`);
  return `${text.slice(0, start + BEGIN.length)}\n${renderErrorTable()}\n${text.slice(end)}`;
}

export const ERRORS_DOC = fileURLToPath(new URL('../../docs/errors.md', import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(ERRORS_DOC, withErrorTable(readFileSync(ERRORS_DOC, 'utf8')));
}
