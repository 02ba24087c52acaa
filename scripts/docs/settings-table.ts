/**
 * The README's table of settings, generated from the catalogue (lib/config.ts `SETTINGS`): `npm run docs:settings`
 * rewrites the part between the markers; test/unit/readme.test.ts fails when the README differs from what this
 * renders (a setting added, changed or removed without running it).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SETTINGS } from '../../lib/config.js';

export const BEGIN = '<!-- settings:begin (npm run docs:settings) -->';
export const END = '<!-- settings:end -->';

const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** The markdown table: one row per catalogued setting, in its order. */
export function renderSettingsTable(): string {
  const rows = SETTINGS.map((s) => {
    const where = s.scope === 'local' ? 'local / CLI' : 'app';
    const value = s.default === undefined ? '—' : `\`${cell(s.default)}\``;
    return `| \`${s.name}\` | ${where}${s.secret ? ', secret' : ''} | ${value} | ${cell(s.description)} |`;
  });
  return ['| setting | where | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** `text` with the part between the markers replaced by the table. */
export function withSettingsTable(text: string): string {
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md lacks the markers ${BEGIN} … ${END}`);
  return `${text.slice(0, start + BEGIN.length)}\n${renderSettingsTable()}\n${text.slice(end)}`;
}

export const README = fileURLToPath(new URL('../../README.md', import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(README, withSettingsTable(readFileSync(README, 'utf8')));
}
