/** The README documents every setting the app reads (the catalogue in lib/config.ts). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../lib/config.js';
import { withSettingsTable } from '../../scripts/docs/settings-table.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it.each(SETTINGS.map((s) => [s.name]))('documents %s', (name) => {
    expect(readme).toContain(`\`${name}\``);
  });

  it('carries the settings table generated from the catalogue (npm run docs:settings)', () => {
    expect(readme).toBe(withSettingsTable(readme));
  });

  it('has the two set-up commands', () => {
    expect(readme).toMatch(/^npm start\b/m);
    expect(readme).toMatch(/^npm test\b/m);
  });
});
