/**
 * A stand-in Docker credential helper (`docker-credential-<name>` on PATH): `get` reads the server from stdin and
 * answers `{"ServerURL","Username","Secret"}` from the table the test wrote, "credentials not found in native
 * keychain" (exit 1) for others, as docker-credential-helpers do; a server named in `failFor` makes it fail
 * (exit 3, "keychain is locked"). Every server asked for is logged.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface CredentialHelper {
  readonly dir: string;
  /** Servers asked for, in order. */
  asked(): Promise<string[]>;
}

export async function installCredentialHelper(
  dir: string,
  name: string,
  table: Record<string, { username: string; secret: string }>,
  failFor: string[] = [],
): Promise<CredentialHelper> {
  await mkdir(dir, { recursive: true });
  const log = join(dir, `${name}.log`);
  await writeFile(log, '');
  await writeFile(
    join(dir, `docker-credential-${name}`),
    `#!${process.execPath}
const fs = require('node:fs');
const table = ${JSON.stringify(table)};
const failFor = ${JSON.stringify(failFor)};
if (process.argv[2] !== 'get') { process.stderr.write('only get\\n'); process.exit(2); }
let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  const server = input.trim();
  fs.appendFileSync(${JSON.stringify(log)}, server + '\\n');
  if (failFor.includes(server)) { process.stderr.write('error: keychain is locked\\n'); process.exit(3); }
  const entry = table[server];
  if (!entry) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
  process.stdout.write(JSON.stringify({ ServerURL: server, Username: entry.username, Secret: entry.secret }));
});
`,
  );
  await chmod(join(dir, `docker-credential-${name}`), 0o755);
  return { dir, asked: async () => (await readFile(log, 'utf8')).split('\n').filter(Boolean) };
}
