/**
 * A stand-in for the Azure CLI on PATH, for @azure/identity's AzureCliCredential (which runs
 * `az account get-access-token --output json --resource <resource> [--tenant T]`): a small Node.js script
 * named `az` that answers with the JSON the real command prints, for the resources the test logged in to
 * (tokens the test minted), and as the real one does when nobody is logged in otherwise. Every call is
 * appended to a log the test reads. Nothing leaves the machine.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface AzStandIn {
  /** The folder holding `az`: put it first on PATH. */
  readonly dir: string;
  /** PATH with the stand-in first. */
  readonly path: string;
  /** "Logs in": the token `az account get-access-token --resource <resource>` prints from now on. */
  login(resource: string, token: string, expiresInSeconds?: number): Promise<void>;
  /** Forgets every token (as `az logout`). */
  logout(): Promise<void>;
  /** The argument lists of the calls so far. */
  calls(): Promise<string[][]>;
}

const SCRIPT = (tokens: string, log: string): string => `#!${process.execPath}
const fs = require('node:fs');
const args = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify(args) + '\\n');
if (args[0] !== 'account' || args[1] !== 'get-access-token') {
  process.stderr.write('az stand-in: only "account get-access-token" is implemented\\n');
  process.exit(2);
}
const at = args.indexOf('--resource');
const resource = at >= 0 ? args[at + 1] : '';
const tokens = JSON.parse(fs.readFileSync(${JSON.stringify(tokens)}, 'utf8'));
const entry = tokens[resource];
if (!entry) {
  process.stderr.write("ERROR: Please run 'az login' to setup account.\\n");
  process.exit(1);
}
const expires = new Date(entry.expiresOn * 1000);
const local = expires.toISOString().replace('T', ' ').replace('Z', '000');
process.stdout.write(JSON.stringify({
  accessToken: entry.token, expiresOn: local, expires_on: entry.expiresOn,
  subscription: '00000000-0000-0000-0000-00000000abcd', tenant: entry.tenant ?? '00000000-0000-0000-0000-00000000dcba', tokenType: 'Bearer',
}, null, 2) + '\\n');
`;

export async function installAz(dir: string): Promise<AzStandIn> {
  await mkdir(dir, { recursive: true });
  const tokensFile = join(dir, 'tokens.json');
  const log = join(dir, 'calls.log');
  await writeFile(tokensFile, '{}');
  await writeFile(log, '');
  await writeFile(join(dir, 'az'), SCRIPT(tokensFile, log));
  await chmod(join(dir, 'az'), 0o755);
  const read = async (): Promise<Record<string, unknown>> =>
    JSON.parse(await readFile(tokensFile, 'utf8')) as Record<string, unknown>;
  return {
    dir,
    path: `${dir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    login: async (resource, token, expiresInSeconds = 3600) => {
      const tokens = await read();
      tokens[resource] = { token, expiresOn: Math.floor(Date.now() / 1000) + expiresInSeconds };
      await writeFile(tokensFile, JSON.stringify(tokens));
    },
    logout: () => writeFile(tokensFile, '{}'),
    calls: async () =>
      (await readFile(log, 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as string[]),
  };
}
