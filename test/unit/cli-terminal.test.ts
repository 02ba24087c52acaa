/**
 * Registry text reaches the terminal only as printable characters (issue 22, finding 6): a hostile registry's
 * error message rewrote the terminal title (OSC 0), wrote the clipboard (OSC 52) and drew a green "imported … OK".
 * The installed command, run as users run it (a child process of bin/oci-import.js), against a hostile scripted
 * registry and a scripted service endpoint: no ESC, BEL, CR or C1 control leaves it, and the text stays readable.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { scripted, type ScriptedPeer } from '../support/scripted.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Title, clipboard, a carriage return over the line, a green fake success, and C1 CSI (0x9b). */
const HOSTILE = '\u001b]0;pwned\u0007\u001b]52;c;ZXZpbA==\u0007\r\u001b[32mimported evil OK\u001b[0m\n\u009b2J done';
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/oci-import.js', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString('utf8');
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString('utf8');
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the CLI prints registry text without its control characters (child process)', () => {
  const peers: ScriptedPeer[] = [];
  afterEach(async () => {
    await Promise.all(peers.splice(0).map((p) => p.close()));
  });

  it('an import whose source answers with control sequences in its error message', async () => {
    const body = JSON.stringify({ errors: [{ code: 'DENIED', message: HOSTILE }] });
    const source = await scripted([
      {
        req: { method: 'GET', path: '/v2/team/app/manifests/1' },
        res: { status: 403, headers: { 'content-type': 'application/json' }, body },
      },
    ]);
    const target = await scripted([]);
    peers.push(source, target);
    const r = await cli([
      'import',
      '--source',
      `${source.host}/team/app:1`,
      '--target',
      target.host,
      '--insecure',
      source.host,
      '--insecure',
      target.host,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('import failed [DENIED]');
    expect(r.stderr).toContain('\\u001b]0;pwned\\u0007');
    expect(r.stderr).toContain('\\u001b[32mimported evil OK');
    expect(r.stderr + r.stdout).not.toMatch(CONTROL);
    // the message stays on its line: nothing of it starts a line of its own
    expect(r.stderr.split('\n').filter((l) => l.includes('imported evil OK'))).toEqual([
      expect.stringContaining('oci-import: import failed [DENIED]'),
    ]);
  });

  it('status and --json of a service import whose error carries registry text', async () => {
    const id = '00000000-0000-4000-8000-000000000001';
    const view = {
      id,
      status: 'failed',
      source: 'r.example/app:1',
      targets: ['t.example/app:1'],
      createdAt: '2025-06-01T00:00:00Z',
      updatedAt: '2025-06-01T00:00:01Z',
      progress: { manifests: 1, blobsTotal: 1, blobsDone: 0, bytesTotal: 1, bytesCopied: 0 },
      error: { code: 'DENIED', message: HOSTILE },
    };
    const answer = { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(view) };
    const service = await scripted([
      { req: { method: 'GET', path: `/api/imports/${id}` }, res: answer },
      { req: { method: 'GET', path: `/api/imports/${id}` }, res: answer },
    ]);
    peers.push(service);
    const text = await cli(['status', id, '--endpoint', `${service.url}/api`]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('[DENIED] \\u001b]0;pwned');
    expect(text.stdout + text.stderr).not.toMatch(CONTROL);
    const json = await cli(['status', id, '--endpoint', `${service.url}/api`, '--json']);
    expect(json.stdout).not.toMatch(CONTROL);
    // still JSON, and the same text once parsed
    expect((JSON.parse(json.stdout) as typeof view).error.message).toBe(HOSTILE);
  });
});
