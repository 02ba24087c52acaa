/**
 * The plan's notes (bounded: a source decides how many there are) and the target names an import writes, one case
 * per rule of lib/engine/notes.ts and lib/engine/targets.ts.
 */
import { describe, expect, it } from 'vitest';
import { MAX_NOTE_LENGTH, MAX_NOTES, Notes } from '../../../lib/engine/notes.js';
import { targetName, targetRefs, targetRepositories } from '../../../lib/engine/targets.js';

describe('plan notes', () => {
  it('keeps each note once, in order', () => {
    const notes = new Notes();
    notes.push('b');
    notes.push('a');
    notes.push('b');
    expect(notes.list()).toEqual(['b', 'a']);
  });

  it(`cuts a note longer than ${MAX_NOTE_LENGTH} characters to ${MAX_NOTE_LENGTH}, ending in …; one that long stays whole`, () => {
    const notes = new Notes();
    const exact = 'x'.repeat(MAX_NOTE_LENGTH);
    const long = 'y'.repeat(MAX_NOTE_LENGTH + 1);
    notes.push(exact);
    notes.push(long);
    const [kept, cut] = notes.list();
    expect(kept).toBe(exact);
    expect(cut).toBe(`${'y'.repeat(MAX_NOTE_LENGTH - 1)}…`);
    expect(cut).toHaveLength(MAX_NOTE_LENGTH);
  });

  it(`keeps ${MAX_NOTES} notes, then says how many more there were (repeats of a kept note not counted)`, () => {
    const notes = new Notes();
    for (let i = 0; i < MAX_NOTES; i++) notes.push(`note ${i}`);
    expect(notes.list()).toHaveLength(MAX_NOTES);
    notes.push('note 0');
    expect(notes.list()).toHaveLength(MAX_NOTES);
    for (let i = MAX_NOTES; i < MAX_NOTES + 3; i++) notes.push(`note ${i}`);
    const list = notes.list();
    expect(list).toHaveLength(MAX_NOTES + 1);
    expect(list.slice(0, MAX_NOTES)).toEqual(Array.from({ length: MAX_NOTES }, (_, i) => `note ${i}`));
    expect(list[MAX_NOTES]).toBe('…and 3 more');
    expect(new Notes().list()).toEqual([]);
  });
});

describe('target names', () => {
  const source = 'registry.example/team/app:1.2';

  it('images: repository:tag, latest when the tag is left out; a digest is refused', () => {
    expect(targetRefs({ source, images: ['mirror/app:2', 'mirror/app'] })).toEqual([
      { repository: 'mirror/app', tag: '2' },
      { repository: 'mirror/app', tag: 'latest' },
    ]);
    expect(() => targetRefs({ source, images: [`mirror/app@sha256:${'a'.repeat(64)}`] })).toThrow(
      expect.objectContaining({ code: 'INVALID_REQUEST', message: expect.stringContaining('has a digest') }),
    );
  });

  it('repository: written by digest, no tag; once when images already name it; a tag or digest in it is refused', () => {
    expect(targetRefs({ source, repository: 'mirror/app' })).toEqual([{ repository: 'mirror/app' }]);
    expect(targetRefs({ source, images: ['mirror/app:2'], repository: 'mirror/app' })).toEqual([
      { repository: 'mirror/app', tag: '2' },
    ]);
    expect(targetRefs({ source, images: ['other/app:2'], repository: 'mirror/app' })).toEqual([
      { repository: 'other/app', tag: '2' },
      { repository: 'mirror/app' },
    ]);
    for (const repository of ['mirror/app:2', `mirror/app@sha256:${'b'.repeat(64)}`]) {
      expect(() => targetRefs({ source, repository })).toThrow(
        expect.objectContaining({ code: 'INVALID_REQUEST', message: expect.stringContaining('without tag or digest') }),
      );
    }
  });

  it("neither: the source's own repository and tag (latest without one; no tag for a source by digest)", () => {
    expect(targetRefs({ source })).toEqual([{ repository: 'team/app', tag: '1.2' }]);
    expect(targetRefs({ source: 'registry.example/team/app' })).toEqual([{ repository: 'team/app', tag: 'latest' }]);
    expect(targetRefs({ source: `registry.example/team/app@sha256:${'c'.repeat(64)}` })).toEqual([
      { repository: 'team/app' },
    ]);
  });

  it('names a ref with and without its tag, and lists repositories once, in copy order', () => {
    expect(targetName('acr.example', { repository: 'mirror/app', tag: '2' })).toBe('acr.example/mirror/app:2');
    expect(targetName('acr.example', { repository: 'mirror/app' })).toBe('acr.example/mirror/app');
    expect(
      targetRepositories([
        { repository: 'b', tag: '1' },
        { repository: 'a', tag: '1' },
        { repository: 'b', tag: '2' },
      ]),
    ).toEqual(['b', 'a']);
  });
});
