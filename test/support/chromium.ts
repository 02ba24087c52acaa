/**
 * Headless Chromium (Debian's `chromium`) driven over the DevTools protocol through `--remote-debugging-pipe`:
 * the browser reads commands from fd 3 and writes answers and events to fd 4, each a JSON message ending in a
 * NUL byte. No WebSocket, no port, no library and no browser download (what puppeteer would add): a page is
 * loaded at a phone's size, its rendered DOM read by an expression evaluated in the page, its console,
 * exceptions and Content-Security-Policy reports collected, and a PNG screenshot taken.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { onPath } from './registry.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Whether Chromium is here; with OCI_IMPORT_REQUIRE_REGISTRY=1 (CI) its absence fails instead of skipping. */
export function requireChromium(): boolean {
  if (onPath('chromium')) return true;
  if (process.env.OCI_IMPORT_REQUIRE_REGISTRY === '1') {
    throw new Error(
      'OCI_IMPORT_REQUIRE_REGISTRY=1 but chromium is not on PATH (apt-get install chromium; .ci/run installs it)',
    );
  }
  return false;
}

type Message = {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
};

export interface PageReport {
  /** console messages, uncaught exceptions and browser log entries (CSP violations among them) */
  readonly messages: string[];
}

export class Browser {
  private nextId = 1;
  private buffer = '';
  private readonly pending = new Map<number, { resolve: (m: Message) => void; reject: (e: Error) => void }>();
  private readonly messages: string[] = [];

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {
    const out = child.stdio[4] as Readable;
    out.setEncoding('utf8');
    out.on('data', (text: string) => this.receive(text));
  }

  static async launch(): Promise<Browser> {
    const dir = await mkdtemp(join(tmpdir(), 'oci-import-chromium-'));
    const child = spawn(
      CHROMIUM,
      [
        '--headless=new',
        '--remote-debugging-pipe',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--no-default-browser-check',
        '--disable-extensions',
        '--disable-background-networking',
        `--user-data-dir=${dir}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
    );
    child.stderr?.resume();
    return new Browser(child, dir);
  }

  private receive(text: string): void {
    this.buffer += text;
    for (let end = this.buffer.indexOf('\0'); end >= 0; end = this.buffer.indexOf('\0')) {
      const msg = JSON.parse(this.buffer.slice(0, end)) as Message;
      this.buffer = this.buffer.slice(end + 1);
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(msg.error.message));
        else p?.resolve(msg);
      } else {
        this.event(msg);
      }
    }
  }

  private event(msg: Message): void {
    const p = msg.params ?? {};
    if (msg.method === 'Runtime.consoleAPICalled') {
      this.messages.push(
        `console.${String(p.type)}: ${(p.args as { value?: unknown; description?: string }[]).map((a) => String(a.value ?? a.description)).join(' ')}`,
      );
    } else if (msg.method === 'Runtime.exceptionThrown') {
      this.messages.push(
        `exception: ${JSON.stringify((p.exceptionDetails as { exception?: { description?: string }; text?: string }).exception?.description ?? p.exceptionDetails)}`,
      );
    } else if (msg.method === 'Log.entryAdded') {
      const e = p.entry as { level: string; source: string; text: string };
      this.messages.push(`log.${e.level} [${e.source}]: ${e.text}`);
    }
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const input = this.child.stdio[3] as Writable;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: (m) => resolve(m.result ?? {}), reject });
      input.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  /** A new tab of `width`×`height` CSS pixels (a phone by default), navigated to `url`. */
  async open(url: string, o: { width?: number; height?: number; mobile?: boolean } = {}): Promise<Page> {
    const { targetId } = (await this.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
    const { sessionId } = (await this.send('Target.attachToTarget', { targetId, flatten: true })) as {
      sessionId: string;
    };
    for (const domain of ['Page', 'Runtime', 'Log']) await this.send(`${domain}.enable`, {}, sessionId);
    await this.send(
      'Emulation.setDeviceMetricsOverride',
      { width: o.width ?? 390, height: o.height ?? 844, deviceScaleFactor: 2, mobile: o.mobile ?? true },
      sessionId,
    );
    await this.send('Page.navigate', { url }, sessionId);
    return new Page(this, sessionId, this.messages);
  }

  async close(): Promise<void> {
    await this.send('Browser.close').catch(() => undefined);
    if (this.child.exitCode === null)
      await new Promise((r) => {
        const t = setTimeout(() => {
          this.child.kill('SIGKILL');
          r(undefined);
        }, 5000);
        this.child.once('exit', () => {
          clearTimeout(t);
          r(undefined);
        });
      });
    await rm(this.dir, { recursive: true, force: true });
  }
}

export class Page {
  constructor(
    private readonly browser: Browser,
    private readonly sessionId: string,
    readonly messages: string[],
  ) {}

  /** The value of a JavaScript expression evaluated in the page (JSON-serializable). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = (await this.browser.send(
      'Runtime.evaluate',
      { expression, returnByValue: true, awaitPromise: true },
      this.sessionId,
    )) as { result: { value: T }; exceptionDetails?: unknown };
    if (r.exceptionDetails) throw new Error(`evaluate failed: ${JSON.stringify(r.exceptionDetails)}`);
    return r.result.value;
  }

  /** Polls an expression until it is truthy (one that throws — the document still loading — counts as false). */
  async waitFor(expression: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (
      !(await this.evaluate<boolean>(`(() => { try { return Boolean(${expression}); } catch { return false; } })()`))
    ) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${expression}; page messages:\n${this.messages.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async screenshot(): Promise<Buffer> {
    const { data } = (await this.browser.send(
      'Page.captureScreenshot',
      { format: 'png', captureBeyondViewport: true },
      this.sessionId,
    )) as { data: string };
    return Buffer.from(data, 'base64');
  }
}
