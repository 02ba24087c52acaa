/**
 * What the CLI prints is partly registry text — error messages, notes, media types — and a terminal obeys
 * control characters: ESC sequences rewrite the window title, colour a fake "imported … OK", or (OSC 52) write
 * the clipboard. So every write to stdout and stderr goes through `printable`: C0 controls (but newline and tab),
 * DEL and the C1 controls (which some terminals take as CSI and OSC themselves) are shown as `\u001b`-style
 * escapes — in JSON output the same escape is the same character, so `--json` stays valid. Lines that carry
 * registry text are `oneLine`, so a newline cannot start a line of its own either. Progress draws its own line
 * with `\r` and `ESC [K` through `raw`.
 */

// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

const escape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** `text` with every control character but newline and tab as a visible escape. */
export function printable(text: string): string {
  return text.replace(CONTROL, escape);
}

/** `text` as one line: newlines and tabs escaped too. */
export function oneLine(text: string): string {
  return printable(text).replace(/[\n\t]/g, escape);
}

type Stream = NodeJS.WritableStream & { isTTY?: boolean };

/** A stream whose string writes pass `printable`; `raw` is the stream itself, for the CLI's own control sequences. */
export function printableStream<T extends Stream>(stream: T): T & { readonly raw: T } {
  if ((stream as { raw?: T }).raw) return stream as T & { raw: T };
  const write = (chunk: unknown, ...rest: unknown[]): boolean =>
    (stream.write as (c: unknown, ...r: unknown[]) => boolean)(
      typeof chunk === 'string' ? printable(chunk) : chunk,
      ...rest,
    );
  return new Proxy(stream, {
    get(target, prop) {
      if (prop === 'write') return write;
      if (prop === 'raw') return target;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as T & { raw: T };
}

/** The stream beneath a printable one (a plain stream is its own). */
export function rawStream(stream: Stream): Stream {
  return (stream as { raw?: Stream }).raw ?? stream;
}
