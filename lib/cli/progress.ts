/**
 * Progress on stderr: a single refreshed line on a terminal (bytes, rate, blobs), plain event lines
 * otherwise (CI logs), so stdout stays clean for the result.
 */
import type { BlobState, ImportPlan } from '../engine/types.js';
import { oneLine, rawStream } from './terminal.js';

const MiB = 1024 * 1024;
const fmt = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
/** Redraw at most this often on a terminal. */
const REDRAW_MS = 200;

export class Progress {
  private total = 0;
  private copied = 0;
  private blobsTotal = 0;
  private blobsDone = 0;
  private started = Date.now();
  private lastDraw = 0;
  private lastStatus: string | undefined;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly tty: boolean,
  ) {}

  start(plan: ImportPlan): void {
    const repos = new Set(plan.target.refs.map((r) => r.repository)).size;
    this.blobsTotal = plan.blobs.length * repos;
    this.total = plan.blobs.reduce((n, b) => n + b.size, 0) * repos;
    this.started = Date.now();
    const referrers = plan.referrers ? ` (${plan.referrers.length} referrer(s))` : '';
    this.line(
      `plan: ${plan.manifests.length} manifest(s)${referrers}, ${plan.blobs.length} blob(s), ${fmt(this.total / repos)} from ${plan.source.registry}/${plan.source.repository}`,
    );
    for (const note of plan.notes) this.line(`note: ${note}`);
  }

  bytes(n: number): void {
    this.copied += n;
    this.draw();
  }

  blobDone(s: BlobState): void {
    if (s.phase !== 'done') return;
    this.blobsDone++;
    if (s.outcome !== 'copied') this.copied += s.size;
    if (!this.tty)
      this.line(`blob ${s.digest.slice(0, 19)}… ${s.outcome} (${fmt(s.size)}) [${this.blobsDone}/${this.blobsTotal}]`);
    this.draw(true);
  }

  /**
   * The service's numbers for an import followed at an endpoint (`import --endpoint`): the same line, from
   * absolute values. Off a terminal, a line whenever the status or the blob count changes.
   */
  remote(
    status: string,
    p: {
      readonly bytesTotal: number;
      readonly bytesCopied: number;
      readonly blobsDone: number;
      readonly blobsTotal: number;
    },
  ): void {
    const changed = status !== this.lastStatus || p.blobsDone !== this.blobsDone;
    if (status !== this.lastStatus && this.lastStatus === undefined) this.started = Date.now();
    this.total = p.bytesTotal;
    this.copied = p.bytesCopied;
    this.blobsTotal = p.blobsTotal;
    this.blobsDone = p.blobsDone;
    if (!this.tty && changed)
      this.line(`${status}: ${fmt(this.copied)} / ${fmt(this.total)}, blobs ${this.blobsDone}/${this.blobsTotal}`);
    else if (this.tty && status !== this.lastStatus) this.line(status);
    this.lastStatus = status;
    this.draw(true);
  }

  notice(message: string): void {
    this.line(`note: ${message}`);
  }

  end(): void {
    this.draw(true);
    if (this.tty) this.out.write('\n');
  }

  /** One line of `text` (registry text included: one line, no control character), over the refreshed one on a terminal. */
  private line(text: string): void {
    if (this.tty) rawStream(this.out).write('\r\x1b[K');
    this.out.write(`${oneLine(text)}\n`);
  }

  private draw(force = false): void {
    if (!this.tty) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    rawStream(this.out).write(
      `\r\x1b[K${fmt(this.copied)} / ${fmt(this.total)}  ${fmt(this.copied / seconds)}/s  blobs ${this.blobsDone}/${this.blobsTotal}`,
    );
  }
}
