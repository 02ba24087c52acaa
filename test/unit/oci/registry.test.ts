/**
 * The registry client against a scripted peer: what it refuses on its own — an upload Location or a tag
 * list page on another origin, a tag list over the caller's bound — and the exact requests of the common
 * protocol steps.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDigest } from '../../../lib/oci/digest.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { scripted, type ScriptedPeer } from '../../support/scripted.js';

const retry = { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 };

describe('registry client (scripted)', () => {
  let peer: ScriptedPeer | undefined;
  afterEach(async () => {
    await peer?.close();
    peer = undefined;
  });
  const client = () => new RegistryClient({ registry: peer!.host, insecure: true, retry, side: 'target' });

  it("refuses an upload Location on another origin (the target's token never leaves it)", async () => {
    peer = await scripted([
      {
        req: { method: 'POST', path: '/v2/app/blobs/uploads/' },
        res: { status: 202, headers: { location: 'http://attacker.test:9/upload/1' } },
      },
    ]);
    await expect(client().startUpload('app')).rejects.toMatchObject({
      code: 'UNEXPECTED_UPLOAD_LOCATION',
      side: 'target',
      temporary: false,
    });
    peer.verify();
  });

  it('refuses a PATCH answer whose next Location is on another origin', async () => {
    peer = await scripted([
      {
        req: { method: 'POST', path: '/v2/app/blobs/uploads/' },
        res: { status: 202, headers: { location: '/v2/app/blobs/uploads/u1?_state=a' } },
      },
      {
        req: { method: 'PATCH', path: '/v2/app/blobs/uploads/u1?_state=a', headers: { 'content-range': '0-2' } },
        res: { status: 202, headers: { location: 'http://10.0.0.5/v2/app/blobs/uploads/u1' } },
      },
    ]);
    const c = client();
    const session = await c.startUpload('app');
    expect(session.location).toBe(`${peer.url}/v2/app/blobs/uploads/u1?_state=a`);
    await expect(c.patchUpload('app', session.location, 0, Buffer.from('abc'))).rejects.toMatchObject({
      code: 'UNEXPECTED_UPLOAD_LOCATION',
    });
    peer.verify();
  });

  it('follows tag pages on its own origin only', async () => {
    peer = await scripted([
      {
        req: { method: 'GET', path: '/v2/app/tags/list?n=2' },
        res: {
          status: 200,
          headers: { link: '</v2/app/tags/list?last=b&n=2>; rel="next"' },
          body: '{"tags":["a","b"]}',
        },
      },
      {
        req: { method: 'GET', path: '/v2/app/tags/list?last=b&n=2' },
        res: {
          status: 200,
          headers: { link: '<http://169.254.169.254/latest/meta-data?x=1>; rel="next"' },
          body: '{"tags":["c"]}',
        },
      },
    ]);
    await expect(client().listTags('app', { maxTags: 100, pageSize: 2 })).rejects.toMatchObject({
      code: 'CROSS_ORIGIN_LINK',
    });
    peer.verify();
  });

  it('refuses a tag list longer than the bound, naming the setting, without reading further pages', async () => {
    peer = await scripted([
      {
        req: { method: 'GET', path: '/v2/app/tags/list?n=3' },
        res: {
          status: 200,
          headers: { link: '</v2/app/tags/list?last=c&n=3>; rel="next"' },
          body: '{"tags":["a","b","c"]}',
        },
      },
      {
        req: { method: 'GET', path: '/v2/app/tags/list?last=c&n=3' },
        res: {
          status: 200,
          headers: { link: '</v2/app/tags/list?last=f&n=3>; rel="next"' },
          body: '{"tags":["d","e","f"]}',
        },
      },
    ]);
    const err = await client()
      .listTags('app', { maxTags: 5, setting: 'MAX_TAGS', pageSize: 3 })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'TOO_MANY_TAGS',
      message: expect.stringContaining('more than 5 tags (MAX_TAGS)'),
    });
    peer.verify();
  });

  it('refuses a manifest whose bytes do not hash to the digest asked for', async () => {
    const digest = `sha256:${'0'.repeat(64)}`;
    peer = await scripted([
      {
        req: { method: 'GET', path: `/v2/app/manifests/${digest}` },
        res: {
          status: 200,
          headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
          body: '{"schemaVersion":2}',
        },
      },
    ]);
    await expect(client().getManifest('app', digest)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    peer.verify();
  });

  it('remembers the 1,000 repositories it saw hold a blob most recently, the least recently seen forgotten first', async () => {
    // every blob HEAD finds the blob (200): each repository asked is one that holds a blob
    const server = createServer((req, res) => res.writeHead(req.method === 'HEAD' ? 200 : 404).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const c = new RegistryClient({
        registry: `127.0.0.1:${(server.address() as AddressInfo).port}`,
        insecure: true,
        retry,
        side: 'target',
      });
      const digest = parseDigest(`sha256:${'a'.repeat(64)}`);
      for (let i = 0; i < 1000; i++) await c.headBlob(`r${i}`, digest);
      expect(c.knownToHoldBlobs('r0')).toBe(true);
      expect(c.knownToHoldBlobs('r999')).toBe(true);
      await c.headBlob('r0', digest); // seen again: the most recent now, not added twice (r1 is the least recent)
      await c.headBlob('r1000', digest);
      expect(c.knownToHoldBlobs('r1000')).toBe(true);
      expect(c.knownToHoldBlobs('r0')).toBe(true);
      expect(c.knownToHoldBlobs('r1')).toBe(false);
      expect(c.knownToHoldBlobs('r2')).toBe(true);
      // two more: r2 and r3 go, in that order, and r0 stays (not added twice: one entry, one place)
      await c.headBlob('r1001', digest);
      await c.headBlob('r1002', digest);
      expect(c.knownToHoldBlobs('r2')).toBe(false);
      expect(c.knownToHoldBlobs('r3')).toBe(false);
      expect(c.knownToHoldBlobs('r4')).toBe(true);
      expect(c.knownToHoldBlobs('r0')).toBe(true);
      expect(c.knownToHoldBlobs('never-asked')).toBe(false);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
