/**
 * What a plan tells the user besides its result (a filtered index has a new digest, a foreign layer is left out, a
 * listed referrer is not copied …), bounded: a source decides how many such things there are — 20,000
 * non-distributable layers, 3,000 listed referrers of another subject — and every status read, list page and CLI
 * run shows them. So each note is kept once, cut to MAX_NOTE_LENGTH, and after MAX_NOTES one more says how many
 * were left out.
 */

export const MAX_NOTES = 20;
export const MAX_NOTE_LENGTH = 400;

export class Notes {
  private readonly kept: string[] = [];
  private readonly seen = new Set<string>();
  private dropped = 0;

  push(note: string): void {
    const text = note.length > MAX_NOTE_LENGTH ? `${note.slice(0, MAX_NOTE_LENGTH - 1)}…` : note;
    if (this.seen.has(text)) return;
    if (this.kept.length >= MAX_NOTES) {
      this.dropped++;
      return;
    }
    this.seen.add(text);
    this.kept.push(text);
  }

  /** The notes kept, and `…and N more` when some were not. */
  list(): string[] {
    return this.dropped ? [...this.kept, `…and ${this.dropped} more`] : [...this.kept];
  }
}
