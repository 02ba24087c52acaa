/** Runs the CLI's `main` in-process with captured output, as a user's terminal would see it. */
import { Readable, Writable } from 'node:stream';
import { main } from '../../lib/cli/main.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString('utf8');
    cb();
  }
}

export async function runCli(args: string[], env: Record<string, string | undefined> = {}, stdin?: string): Promise<CliRun> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(args, { stdout, stderr, env, stdin: Readable.from(stdin === undefined ? [] : [Buffer.from(stdin)]) });
  return { code, stdout: stdout.text, stderr: stderr.text };
}
