/** The streams and environment a command runs with: the process's own, or a test's (lib/cli/main.ts, remote.ts). */
export interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Where `--password-stdin` reads from (default: the process's stdin). */
  readonly stdin?: NodeJS.ReadableStream;
  readonly env: Record<string, string | undefined>;
}
