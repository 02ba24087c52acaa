/**
 * Console logging for the local host. One line per event, ISO timestamp first.
 *
 * Rule: the host never logs message bodies, request bodies, query strings or connection strings —
 * queue messages may hold credential references and requests may hold passwords. What a function
 * itself logs through `context.log` is printed as is (that is the app's responsibility).
 */
import { format } from 'node:util';
import type { HostLogLevel } from './settings.js';

const ORDER: Record<HostLogLevel, number> = {
  trace: 0,
  debug: 1,
  information: 2,
  warning: 3,
  error: 4,
  critical: 5,
  none: 6,
};

const TAG: Record<HostLogLevel, string> = {
  trace: 'trace',
  debug: 'debug',
  information: 'info ',
  warning: 'warn ',
  error: 'error',
  critical: 'crit ',
  none: '',
};

export class HostLogger {
  constructor(public minLevel: HostLogLevel = 'information') {}

  enabled(level: HostLogLevel): boolean {
    return level !== 'none' && ORDER[level] >= ORDER[this.minLevel];
  }

  log(level: HostLogLevel, source: string, ...args: unknown[]): void {
    if (!this.enabled(level)) return;
    const text = format(...args);
    const line = `[${new Date().toISOString()}] ${TAG[level]} ${source ? `[${source}] ` : ''}${text}\n`;
    if (ORDER[level] >= ORDER.warning) process.stderr.write(line);
    else process.stdout.write(line);
  }

  trace(source: string, ...args: unknown[]): void {
    this.log('trace', source, ...args);
  }
  debug(source: string, ...args: unknown[]): void {
    this.log('debug', source, ...args);
  }
  info(source: string, ...args: unknown[]): void {
    this.log('information', source, ...args);
  }
  warn(source: string, ...args: unknown[]): void {
    this.log('warning', source, ...args);
  }
  error(source: string, ...args: unknown[]): void {
    this.log('error', source, ...args);
  }

  /** Unconditional output (banner). */
  print(text: string): void {
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }
}

/** Maps an RPC log level string ('information', 'warning', …) to ours; unknown → information. */
export function toHostLevel(level: unknown): HostLogLevel {
  switch (level) {
    case 'trace':
    case 'debug':
    case 'information':
    case 'warning':
    case 'error':
    case 'critical':
    case 'none':
      return level;
    default:
      return 'information';
  }
}

/** A short, single-line description of a thrown value: `Name: message` (no stack, no body). */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const msg = err.message.replace(/\s+/g, ' ').trim();
    return `${err.name}: ${msg.length > 500 ? `${msg.slice(0, 500)}…` : msg}`;
  }
  const text =
    typeof err === 'string'
      ? err
      : (() => {
          try {
            return JSON.stringify(err);
          } catch {
            return String(err);
          }
        })();
  return `non-Error thrown: ${String(text).slice(0, 200)}`;
}
