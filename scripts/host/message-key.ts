/**
 * MESSAGE_KEY for the local host: the app authenticates its own queue step messages with it (in Azure a Key
 * Vault secret the template makes). When neither the environment nor local.settings.json sets one, the host
 * makes 32 random bytes once and keeps them in `<root>/.local-host/message-key` (readable by this user only),
 * so step messages queued before a restart are still the app's after it.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Env } from './settings.js';

export const MESSAGE_KEY_FILE = join('.local-host', 'message-key');

/** Sets `env.MESSAGE_KEY` from the kept file (made first when missing); returns where it came from, for the banner. */
export function ensureMessageKey(root: string, env: Env): string {
  if (env.MESSAGE_KEY?.trim()) return 'MESSAGE_KEY from the settings';
  const path = join(root, MESSAGE_KEY_FILE);
  let made = false;
  mkdirSync(join(root, '.local-host'), { recursive: true, mode: 0o700 });
  try {
    // 'wx': of two hosts starting at once in the same root, one writes and both read the same key
    writeFileSync(path, `${randomBytes(32).toString('base64')}\n`, { flag: 'wx', mode: 0o600 });
    made = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  env.MESSAGE_KEY = readFileSync(path, 'utf8').trim();
  return `MESSAGE_KEY ${made ? 'made and kept in' : 'read from'} ${path}`;
}
