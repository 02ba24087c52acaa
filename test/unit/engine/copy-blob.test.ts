/**
 * copyBlob request by request: the target is a scripted peer (every request it must see, in order), the
 * source the in-process fake registry. The upload state machine: pending → uploading → done, resumed
 * only where the registry confirms the offset, never a PATCH replayed blindly.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ASK_WITH_UPLOAD_BYTES,
  copyBlob,
  initialBlobState,
  type CopyBlobOptions,
} from '../../../lib/engine/copy-blob.js';
import { PartPool } from '../../../lib/engine/part-reader.js';
import type { BlobState } from '../../../lib/engine/types.js';
import type { Digest } from '../../../lib/oci/digest.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';
import { scripted, registryErrors, type ScriptedPeer } from '../../support/scripted.js';

const retry = { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 };
const data = Buffer.from('0123456789abcdefghij'); // 20 bytes
const digest = `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
const uploads = '/v2/app/blobs/uploads/';

/** Delays the target's upload POSTs by 300 ms; records when a POST and the source's first blob GET arrived. */
function postAndGetTimes(src: FakeRegistry, dst: FakeRegistry): { postAt: number; getAt: number } {
  const at = { postAt: 0, getAt: 0 };
  dst.faults.push({ method: 'POST', path: /\/blobs\/uploads\//, action: { kind: 'delay', ms: 300 } });
  dst.onRequest = (r) => {
    if (r.method === 'POST') at.postAt = performance.now();
  };
  src.onRequest = (r) => {
    if (r.method === 'GET' && r.url.includes('/blobs/')) at.getAt ||= performance.now();
  };
  return at;
}

describe('copyBlob (scripted target)', () => {
  let src: FakeRegistry;
  let target: ScriptedPeer | undefined;
  afterEach(async () => {
    await Promise.all([src?.close(), target?.close()]);
    target = undefined;
  });

  const options = (chunkSize: number, extra: Partial<CopyBlobOptions> = {}): CopyBlobOptions => ({
    source: new RegistryClient({ registry: src.host, insecure: true, retry, side: 'source' }),
    sourceRepository: 'team/app',
    target: new RegistryClient({ registry: target!.host, insecure: true, retry, side: 'target' }),
    mountFrom: [],
    chunkSize,
    fetchConcurrency: 1,
    partPool: new PartPool(4),
    partSize: 10,
    sessionRetry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    ...extra,
  });
  const start = async () => {
    src = await startFakeRegistry();
    src.putBlob('team/app', data);
  };

  it('a small blob: HEAD (absent) → POST → one PUT carrying the bytes', async () => {
    await start();
    const ten = data.subarray(0, 10);
    const tenDigest = src.putBlob('team/app', ten) as Digest;
    target = await scripted([
      { req: { method: 'HEAD', path: `/v2/app/blobs/${tenDigest}` }, res: { status: 404 } },
      { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/1?_state=s0' } } },
      {
        req: {
          method: 'PUT',
          path: `/up/1?_state=s0&digest=${encodeURIComponent(tenDigest)}`,
          headers: { 'content-range': '0-9' },
          body: '0123456789',
        },
        res: { status: 201 },
      },
    ]);
    const done = await copyBlob(
      initialBlobState({ digest: tenDigest, size: 10 }, 'app'),
      { until: Date.now() + 10_000 },
      options(8 * 1024),
    );
    expect(done).toMatchObject({ phase: 'done', outcome: 'copied', sessions: 1 });
    target.verify();
  });

  it('a new session: its first bytes are asked of the source while the target opens it, not after', async () => {
    await start();
    const dst = await startFakeRegistry();
    try {
      // the target takes 300 ms to answer the POST; the source's GET arrives meanwhile
      const at = postAndGetTimes(src, dst);
      const done = await copyBlob(
        initialBlobState({ digest, size: 20 }, 'app'),
        { until: Date.now() + 10_000 },
        {
          source: new RegistryClient({ registry: src.host, insecure: true, retry, side: 'source' }),
          sourceRepository: 'team/app',
          target: new RegistryClient({ registry: dst.host, insecure: true, retry, side: 'target' }),
          mountFrom: [],
          chunkSize: Infinity,
          fetchConcurrency: 1,
          partPool: new PartPool(4),
        },
      );
      expect(done).toMatchObject({ phase: 'done', outcome: 'copied' });
      expect(at.postAt).toBeGreaterThan(0);
      expect(at.getAt).toBeGreaterThan(0);
      // one after the other, the GET would arrive 300 ms after the POST or later
      expect(at.getAt - at.postAt).toBeLessThan(200);
      expect(dst.requests.map((r) => r.method)).toEqual(['HEAD', 'POST', 'PUT']);
    } finally {
      await dst.close();
    }
  });

  it('chunks: PATCH per chunk with the newest Location, a checkpoint after each, then the final PUT', async () => {
    await start();
    target = await scripted([
      { req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` }, res: { status: 404 } },
      { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/1?_state=s0' } } },
      {
        req: { method: 'PATCH', path: '/up/1?_state=s0', headers: { 'content-range': '0-9' }, body: '0123456789' },
        res: { status: 202, headers: { location: '/up/1?_state=s10' } },
      },
      {
        req: {
          method: 'PUT',
          path: `/up/1?_state=s10&digest=${encodeURIComponent(digest)}`,
          headers: { 'content-range': '10-19' },
          body: 'abcdefghij',
        },
        res: { status: 201 },
      },
    ]);
    const saved: BlobState[] = [];
    const done = await copyBlob(
      initialBlobState({ digest, size: 20 }, 'app'),
      { until: Date.now() + 10_000 },
      options(10, { checkpoint: async (s) => void saved.push(s) }),
    );
    expect(done).toMatchObject({ phase: 'done', outcome: 'copied' });
    expect(
      saved.map((s) => (s.phase === 'uploading' ? `${s.location.replace(target!.url, '')}@${s.offset}` : s.phase)),
    ).toEqual(['/up/1?_state=s0@0', '/up/1?_state=s10@10']);
    target.verify();
  });

  it('writes each checkpoint while the next chunk goes out, one at a time, and returns once the last is written', async () => {
    await start();
    const thirty = Buffer.from('0123456789abcdefghijKLMNOPQRST');
    const thirtyDigest = src.putBlob('team/app', thirty) as Digest;
    const events: string[] = [];
    const arrived = (what: string, answer: { status: number; headers?: Record<string, string> }) => () => {
      events.push(what);
      return answer;
    };
    target = await scripted([
      { req: { method: 'HEAD', path: `/v2/app/blobs/${thirtyDigest}` }, res: { status: 404 } },
      { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/1?_state=s0' } } },
      {
        req: { method: 'PATCH', path: '/up/1?_state=s0', headers: { 'content-range': '0-9' } },
        res: arrived('PATCH 0-9', { status: 202, headers: { location: '/up/1?_state=s10' } }),
      },
      {
        req: { method: 'PATCH', path: '/up/1?_state=s10', headers: { 'content-range': '10-19' } },
        res: arrived('PATCH 10-19', { status: 202, headers: { location: '/up/1?_state=s20' } }),
      },
      {
        req: {
          method: 'PUT',
          path: `/up/1?_state=s20&digest=${encodeURIComponent(thirtyDigest)}`,
          headers: { 'content-range': '20-29' },
        },
        res: arrived('PUT 20-29', { status: 201 }),
      },
    ]);
    const checkpoint = async (st: BlobState) => {
      const at = st.phase === 'uploading' ? st.offset : -1;
      events.push(`save ${at}`);
      await new Promise((resolve) => setTimeout(resolve, 150));
      events.push(`saved ${at}`);
    };
    const done = await copyBlob(
      initialBlobState({ digest: thirtyDigest, size: 30 }, 'app'),
      { until: Date.now() + 10_000 },
      options(10, { checkpoint }),
    );
    events.push('returned');
    expect(done).toMatchObject({ phase: 'done', outcome: 'copied' });
    // the checkpoint after 0-9 is written while 10-19 goes out; the one after 10-19 waits for it
    expect(events.indexOf('PATCH 10-19')).toBeLessThan(events.indexOf('saved 10'));
    expect(events.indexOf('save 20')).toBeGreaterThan(events.indexOf('saved 10'));
    expect(events.slice(-2)).toEqual(['saved 20', 'returned']);
    target.verify();
  });

  it('a PATCH whose answer is lost: asks the session status, carries on after the chunk it did apply', async () => {
    await start();
    target = await scripted([
      { req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` }, res: { status: 404 } },
      { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/1?_state=s0' } } },
      { req: { method: 'PATCH', path: '/up/1?_state=s0', body: '0123456789' }, res: { reset: true } },
      {
        req: { method: 'GET', path: '/up/1?_state=s0' },
        res: { status: 204, headers: { range: '0-9', location: '/up/1?_state=s10' } },
      },
      {
        req: { method: 'PUT', path: `/up/1?_state=s10&digest=${encodeURIComponent(digest)}`, body: 'abcdefghij' },
        res: { status: 201 },
      },
    ]);
    const notices: string[] = [];
    const done = await copyBlob(
      initialBlobState({ digest, size: 20 }, 'app'),
      { until: Date.now() + 10_000 },
      options(10, { events: { onNotice: (m) => notices.push(m) } }),
    );
    expect(done).toMatchObject({ phase: 'done', sessions: 1 });
    expect(notices.join('\n')).toMatch(/resumed at 10 after/);
    target.verify();
  });

  it("a lost PATCH whose status GET fails too: that GET is the session's attempt, sent once (no nested retries), then a new session", async () => {
    await start();
    target = await scripted([
      { req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` }, res: { status: 404 } },
      { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/1?_state=s0' } } },
      { req: { method: 'PATCH', path: '/up/1?_state=s0', body: '0123456789' }, res: { reset: true } },
      // the client's policy would send it twice; inside the session's attempt it goes once
      { req: { method: 'GET', path: '/up/1?_state=s0' }, res: { status: 503 } },
      { req: { method: 'DELETE', path: '/up/1?_state=s0' }, res: { status: 204 } },
      { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/2?_state=s0' } } },
      {
        req: { method: 'PATCH', path: '/up/2?_state=s0', body: '0123456789' },
        res: { status: 202, headers: { location: '/up/2?_state=s10' } },
      },
      // the final PUT fails and is not sent again by the request: the session's next attempt asks whether it landed
      {
        req: { method: 'PUT', path: `/up/2?_state=s10&digest=${encodeURIComponent(digest)}`, body: 'abcdefghij' },
        res: { status: 503 },
      },
      { req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` }, res: { status: 503 } },
      {
        req: { method: 'GET', path: '/up/2?_state=s10' },
        res: { status: 204, headers: { range: '0-9', location: '/up/2?_state=s10b' } },
      },
      {
        req: { method: 'PUT', path: `/up/2?_state=s10b&digest=${encodeURIComponent(digest)}`, body: 'abcdefghij' },
        res: { status: 201 },
      },
    ]);
    const done = await copyBlob(
      initialBlobState({ digest, size: 20 }, 'app'),
      { until: Date.now() + 10_000 },
      options(10),
    );
    expect(done).toMatchObject({ phase: 'done', sessions: 2 });
    target.verify();
  });

  it('an empty final PUT that fails is sent once too: the session asks whether it landed, then sends it again', async () => {
    await start();
    target = await scripted([
      { req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` }, res: { status: 404 } },
      { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/1?_state=s0' } } },
      {
        req: { method: 'PATCH', path: '/up/1?_state=s0', body: data.toString() },
        res: { status: 202, headers: { location: '/up/1?_state=s20' } },
      },
      // idempotent (no bytes), so the client's policy would send it twice; inside the session's attempt, once
      { req: { method: 'PUT', path: `/up/1?_state=s20&digest=${encodeURIComponent(digest)}` }, res: { status: 503 } },
      { req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` }, res: { status: 404 } },
      {
        req: { method: 'GET', path: '/up/1?_state=s20' },
        res: { status: 204, headers: { range: '0-19', location: '/up/1?_state=s20b' } },
      },
      { req: { method: 'PUT', path: `/up/1?_state=s20b&digest=${encodeURIComponent(digest)}` }, res: { status: 201 } },
    ]);
    const done = await copyBlob(
      initialBlobState({ digest, size: 20 }, 'app'),
      { until: Date.now() + 10_000 },
      options(20),
    );
    expect(done).toMatchObject({ phase: 'done', sessions: 1 });
    target.verify();
  });

  it('a session the registry no longer confirms: cancelled, and the blob starts again in a new one', async () => {
    await start();
    const saved = {
      ...initialBlobState({ digest, size: 20 }, 'app'),
      phase: 'uploading' as const,
      location: '',
      offset: 10,
    };
    target = await scripted([
      { req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` }, res: { status: 404 } },
      {
        req: { method: 'GET', path: '/up/old?_state=s10' },
        res: { status: 404, body: registryErrors('BLOB_UPLOAD_UNKNOWN', 'upload unknown') },
      },
      { req: { method: 'DELETE', path: '/up/old?_state=s10' }, res: { status: 204 } },
      { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/2?_state=s0' } } },
      {
        req: { method: 'PATCH', path: '/up/2?_state=s0', body: '0123456789' },
        res: { status: 202, headers: { location: '/up/2?_state=s10' } },
      },
      {
        req: { method: 'PUT', path: `/up/2?_state=s10&digest=${encodeURIComponent(digest)}`, body: 'abcdefghij' },
        res: { status: 201 },
      },
    ]);
    const done = await copyBlob(
      { ...saved, location: `${target.url}/up/old?_state=s10`, sessions: 1 },
      { until: Date.now() + 10_000 },
      options(10),
    );
    expect(done).toMatchObject({ phase: 'done', sessions: 2 });
    target.verify();
  });

  // A saved session is continued only where the registry's status answer (distribution-spec "Get upload status":
  // `Range: 0-<last byte>`) confirms the saved offset. Any other answer, spec-conformant as it is, cancels the
  // session and starts a new one: a PATCH at an offset the registry does not hold is how a blob gets corrupted.
  it.each([
    ['fewer bytes than saved', '0-4'],
    ['more bytes than saved', '0-14'],
    ['`0-0` (nothing, or one byte)', '0-0'],
    ['no Range at all', undefined],
  ])(
    'a saved session at 10 bytes whose status answers %s: DELETE it, POST a new one, never a PATCH at 10',
    async (_name, range) => {
      await start();
      const saved = {
        ...initialBlobState({ digest, size: 20 }, 'app'),
        phase: 'uploading' as const,
        location: '',
        offset: 10,
        sessions: 1,
      };
      target = await scripted([
        { req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` }, res: { status: 404 } },
        {
          req: { method: 'GET', path: '/up/old?_state=s10' },
          res: { status: 204, headers: { ...(range ? { range } : {}), location: '/up/old?_state=s10' } },
        },
        { req: { method: 'DELETE', path: '/up/old?_state=s10' }, res: { status: 204 } },
        { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/2?_state=s0' } } },
        {
          req: { method: 'PATCH', path: '/up/2?_state=s0', headers: { 'content-range': '0-9' }, body: '0123456789' },
          res: { status: 202, headers: { location: '/up/2?_state=s10' } },
        },
        {
          req: {
            method: 'PUT',
            path: `/up/2?_state=s10&digest=${encodeURIComponent(digest)}`,
            headers: { 'content-range': '10-19' },
            body: 'abcdefghij',
          },
          res: { status: 201 },
        },
      ]);
      const done = await copyBlob(
        { ...saved, location: `${target.url}/up/old?_state=s10` },
        { until: Date.now() + 10_000 },
        options(10),
      );
      expect(done).toMatchObject({ phase: 'done', outcome: 'copied', sessions: 2 });
      target.verify();
    },
  );

  it('a saved session whose status confirms its offset: carried on there, in the same session', async () => {
    await start();
    const saved = {
      ...initialBlobState({ digest, size: 20 }, 'app'),
      phase: 'uploading' as const,
      location: '',
      offset: 10,
      sessions: 1,
    };
    target = await scripted([
      { req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` }, res: { status: 404 } },
      {
        req: { method: 'GET', path: '/up/old?_state=s10' },
        res: { status: 204, headers: { range: '0-9', location: '/up/old?_state=s10b' } },
      },
      {
        req: {
          method: 'PUT',
          path: `/up/old?_state=s10b&digest=${encodeURIComponent(digest)}`,
          headers: { 'content-range': '10-19' },
          body: 'abcdefghij',
        },
        res: { status: 201 },
      },
    ]);
    const done = await copyBlob(
      { ...saved, location: `${target.url}/up/old?_state=s10` },
      { until: Date.now() + 10_000 },
      options(10),
    );
    expect(done).toMatchObject({ phase: 'done', outcome: 'copied', sessions: 1 });
    target.verify();
  });

  it('a PATCH whose answer is lost and whose status shows only part of it applied: a new session, the chunk not replayed', async () => {
    await start();
    target = await scripted([
      { req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` }, res: { status: 404 } },
      { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/1?_state=s0' } } },
      { req: { method: 'PATCH', path: '/up/1?_state=s0', body: '0123456789' }, res: { reset: true } },
      {
        req: { method: 'GET', path: '/up/1?_state=s0' },
        res: { status: 204, headers: { range: '0-4', location: '/up/1?_state=s5' } },
      },
      { req: { method: 'DELETE', path: '/up/1?_state=s0' }, res: { status: 204 } },
      { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/2?_state=s0' } } },
      {
        req: { method: 'PATCH', path: '/up/2?_state=s0', headers: { 'content-range': '0-9' }, body: '0123456789' },
        res: { status: 202, headers: { location: '/up/2?_state=s10' } },
      },
      {
        req: { method: 'PUT', path: `/up/2?_state=s10&digest=${encodeURIComponent(digest)}`, body: 'abcdefghij' },
        res: { status: 201 },
      },
    ]);
    const bytes: number[] = [];
    const done = await copyBlob(
      initialBlobState({ digest, size: 20 }, 'app'),
      { until: Date.now() + 10_000 },
      options(10, { events: { onBytes: (n) => bytes.push(n) } }),
    );
    expect(done).toMatchObject({ phase: 'done', outcome: 'copied', sessions: 2 });
    // the progress takes back the bytes of the chunk sent again: it ends at the blob's size
    expect(bytes.reduce((a, b) => a + b, 0)).toBe(20);
    target.verify();
  });

  it('a PATCH the registry refuses as a session error (416 RANGE_INVALID): the status decides, here a new session', async () => {
    await start();
    target = await scripted([
      { req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` }, res: { status: 404 } },
      { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/1?_state=s0' } } },
      {
        req: { method: 'PATCH', path: '/up/1?_state=s0', body: '0123456789' },
        res: { status: 416, body: registryErrors('RANGE_INVALID', 'invalid content range') },
      },
      {
        req: { method: 'GET', path: '/up/1?_state=s0' },
        res: { status: 404, body: registryErrors('BLOB_UPLOAD_UNKNOWN', 'upload unknown') },
      },
      { req: { method: 'DELETE', path: '/up/1?_state=s0' }, res: { status: 404 } },
      { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/2?_state=s0' } } },
      {
        req: { method: 'PATCH', path: '/up/2?_state=s0', headers: { 'content-range': '0-9' }, body: '0123456789' },
        res: { status: 202, headers: { location: '/up/2?_state=s10' } },
      },
      {
        req: { method: 'PUT', path: `/up/2?_state=s10&digest=${encodeURIComponent(digest)}`, body: 'abcdefghij' },
        res: { status: 201 },
      },
    ]);
    const done = await copyBlob(
      initialBlobState({ digest, size: 20 }, 'app'),
      { until: Date.now() + 10_000 },
      options(10),
    );
    expect(done).toMatchObject({ phase: 'done', outcome: 'copied', sessions: 2 });
    target.verify();
  });

  it('the target holds the digest with another size: BLOB_SIZE_MISMATCH, nothing uploaded', async () => {
    await start();
    target = await scripted([
      {
        req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` },
        res: { status: 200, headers: { 'content-length': '19' } },
      },
    ]);
    const err = await copyBlob(
      initialBlobState({ digest, size: 20 }, 'app'),
      { until: Date.now() + 10_000 },
      options(10),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'BLOB_SIZE_MISMATCH',
      side: 'target',
      message: expect.stringContaining('with 19 bytes, the source says 20'),
    });
    target.verify();
  });

  it('the target has the blob: nothing else is sent; a same-registry repository: a mount', async () => {
    await start();
    target = await scripted([
      {
        req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` },
        res: { status: 200, headers: { 'content-length': '20' } },
      },
      { req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` }, res: { status: 404 } },
      {
        req: { method: 'POST', path: `${uploads}?mount=${encodeURIComponent(digest)}&from=team%2Fapp` },
        res: { status: 201 },
      },
    ]);
    expect(
      await copyBlob(initialBlobState({ digest, size: 20 }, 'app'), { until: Date.now() + 10_000 }, options(10)),
    ).toMatchObject({ phase: 'done', outcome: 'existed' });
    expect(
      await copyBlob(
        initialBlobState({ digest, size: 20 }, 'app'),
        { until: Date.now() + 10_000 },
        options(10, { mountFrom: ['team/app'] }),
      ),
    ).toMatchObject({ phase: 'done', outcome: 'mounted' });
    target.verify();
  });

  it("a source that fails a part ends the step (no new session; without a checkpoint its session is cancelled); the part costs at most the policy's attempts", async () => {
    await start();
    src.faults.push({ method: 'GET', path: /\/blobs\//, action: { kind: 'status', status: 503 } });
    target = await scripted([
      { req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` }, res: { status: 404 } },
      { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/1?_state=s0' } } },
      // nobody can resume it (no checkpoint was given): closed on the target
      { req: { method: 'DELETE', path: '/up/1?_state=s0' }, res: { status: 204 } },
    ]);
    const err = await copyBlob(
      initialBlobState({ digest, size: 20 }, 'app'),
      { until: Date.now() + 10_000 },
      options(10, { partRetry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, side: 'source', temporary: true });
    // the part GETs of this step (a prefetched second part may add its own attempts): 3 per part, never 3 × 5
    const gets = src.requests.filter((r) => r.method === 'GET' && r.url.includes('/blobs/'));
    const byRange = new Map<string, number>();
    for (const g of gets) byRange.set(String(g.headers.range), (byRange.get(String(g.headers.range)) ?? 0) + 1);
    expect(Math.max(...byRange.values())).toBeLessThanOrEqual(3);
    expect(byRange.get('bytes=0-9')).toBe(3);
    target.verify();
  });
});

describe('copyBlob into a repository new to the blob (newToTarget): the upload’s POST asks whether it is there', () => {
  let src: FakeRegistry;
  let dst: FakeRegistry | undefined;
  let target: ScriptedPeer | undefined;
  afterEach(async () => {
    await Promise.all([src?.close(), dst?.close(), target?.close()]);
    dst = undefined;
    target = undefined;
  });
  const mountFromItself = `${uploads}?mount=${encodeURIComponent(digest)}&from=app`;
  const options = (host: string, extra: Partial<CopyBlobOptions> = {}): CopyBlobOptions => ({
    source: new RegistryClient({ registry: src.host, insecure: true, retry, side: 'source' }),
    sourceRepository: 'team/app',
    target: new RegistryClient({ registry: host, insecure: true, retry, side: 'target' }),
    mountFrom: [],
    chunkSize: Infinity,
    fetchConcurrency: 1,
    partPool: new PartPool(4),
    newToTarget: true,
    ...extra,
  });
  const start = async () => {
    src = await startFakeRegistry();
    src.putBlob('team/app', data);
  };
  const copy = (o: CopyBlobOptions, size = 20, d = digest) =>
    copyBlob(initialBlobState({ digest: d, size }, 'app'), { until: Date.now() + 10_000 }, o);

  it('a blob the target lacks: no HEAD; a mount from the repository itself opens the session while the source is read, then one PUT', async () => {
    await start();
    dst = await startFakeRegistry();
    // the target takes 300 ms to answer the POST; the source's GET arrives meanwhile
    const at = postAndGetTimes(src, dst);
    const saved: BlobState[] = [];
    const done = await copy(options(dst.host, { checkpoint: async (s) => void saved.push(s) }));
    expect(done).toMatchObject({ phase: 'done', outcome: 'copied', sessions: 1 });
    expect(dst.requests.map((r) => `${r.method} ${r.url.replace(/\?_state=.*$/, '')}`)).toEqual([
      `POST ${mountFromItself}`,
      expect.stringMatching(/^PUT \/v2\/app\/blobs\/uploads\/[^?]+$/),
    ]);
    expect(at.postAt).toBeGreaterThan(0);
    expect(at.getAt - at.postAt).toBeLessThan(200);
    expect(Buffer.from(dst.getBlob(digest)!).equals(data)).toBe(true);
    // the session is saved before its bytes go, as after a plain POST
    expect(saved.map((s) => s.phase)).toEqual(['uploading']);
  });

  it('a blob the repository holds: the POST says so (201), nothing is uploaded, no byte counted; the client remembers it', async () => {
    await start();
    dst = await startFakeRegistry();
    dst.putBlob('app', data);
    const o = options(dst.host);
    const bytes: number[] = [];
    const done: BlobState[] = [];
    const result = await copy({ ...o, events: { onBytes: (n) => bytes.push(n), onBlobDone: (s) => done.push(s) } });
    expect(result).toMatchObject({ phase: 'done', outcome: 'existed' });
    expect(done).toEqual([result]);
    expect(dst.requests.map((r) => `${r.method} ${r.url}`)).toEqual([`POST ${mountFromItself}`]);
    expect(bytes).toEqual([]);
    expect(o.target.knownToHoldBlobs('app')).toBe(true);
    // from then on, that repository is asked with a HEAD first: no byte fetched for a blob it holds
    src.requests.length = 0;
    dst.requests.length = 0;
    expect(await copy(o)).toMatchObject({ phase: 'done', outcome: 'existed' });
    expect(dst.requests.map((r) => r.method)).toEqual(['HEAD']);
    expect(src.requests).toEqual([]);
  });

  it('a blob the repository holds while the source fails its bytes: existed, the failed read dropped with them', async () => {
    await start();
    src.faults.push({ method: 'GET', path: /\/blobs\//, action: { kind: 'status', status: 500 } });
    dst = await startFakeRegistry();
    dst.putBlob('app', data);
    const notices: string[] = [];
    expect(await copy(options(dst.host, { events: { onNotice: (m) => notices.push(m) } }))).toMatchObject({
      phase: 'done',
      outcome: 'existed',
    });
    expect(dst.requests.map((r) => r.method)).toEqual(['POST']);
    // the read ends with the copy: no retry goes on behind it
    const gets = src.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(src.requests.length).toBe(gets);
  });

  it('a registry that answers the mount otherwise (405): asked the usual way, HEAD then a plain POST', async () => {
    await start();
    target = await scripted([
      { req: { method: 'POST', path: mountFromItself }, res: { status: 405 } },
      { req: { method: 'HEAD', path: `/v2/app/blobs/${digest}` }, res: { status: 404 } },
      { req: { method: 'POST', path: uploads }, res: { status: 202, headers: { location: '/up/1?_state=s0' } } },
      {
        req: { method: 'PUT', path: `/up/1?_state=s0&digest=${encodeURIComponent(digest)}`, body: data.toString() },
        res: { status: 201 },
      },
    ]);
    expect(await copy(options(target.host))).toMatchObject({ phase: 'done', outcome: 'copied', sessions: 1 });
    target.verify();
  });

  it('asked with a HEAD first: a blob larger than ASK_WITH_UPLOAD_BYTES, other repositories to mount from, or a target not new', async () => {
    src = await startFakeRegistry();
    const big = Buffer.alloc(ASK_WITH_UPLOAD_BYTES + 1, 7);
    const bigDigest = src.putBlob('team/app', big) as Digest;
    src.putBlob('team/app', data);
    for (const [o, size, d] of [
      [{}, big.length, bigDigest],
      [{ mountFrom: ['other'] }, 20, digest],
      [{ newToTarget: false }, 20, digest],
    ] as const) {
      dst = await startFakeRegistry();
      expect(await copy(options(dst.host, o), size, d)).toMatchObject({ phase: 'done', outcome: 'copied' });
      expect(dst.requests[0]).toMatchObject({ method: 'HEAD', url: `/v2/app/blobs/${d}` });
      await dst.close();
      dst = undefined;
    }
  });
});
