/**
 * How fast the target registry takes a blob in by itself: no source, no tool, the bytes from memory.
 * Once as one PUT (the way skopeo streams a layer) and once in CHUNK_SIZE PATCHes, the way oci-import
 * must write (bounded chunks, in order, one at a time per session). The difference is the price of
 * chunked uploads on this registry and disk, which no client can go below on a single blob.
 */
import type { Digest } from '../../lib/oci/digest.js';
import { RegistryClient } from '../../lib/oci/registry.js';
import { startRegistry } from '../../test/support/registry.js';

export interface IntakeResult {
  readonly mode: string;
  readonly bytes: number;
  readonly ms: number[];
}

export async function measureIntake(
  blob: Buffer,
  digest: Digest,
  chunkSize: number,
  runs: number,
): Promise<IntakeResult[]> {
  const chunkMiB = chunkSize / 1024 / 1024;
  const modes: { mode: string; upload(c: RegistryClient, location: string): Promise<void> }[] = [
    {
      mode: 'one PUT (one stream, as skopeo sends a layer; the CLI streams a PATCH, then an empty PUT)',
      upload: (c, location) => c.finishUpload('intake', location, digest, 0, blob),
    },
    {
      mode: `${chunkMiB} MiB PATCHes, then PUT (as the queue mode writes)`,
      upload: async (c, location) => {
        let at = 0;
        for (; at + chunkSize < blob.length; at += chunkSize)
          location = await c.patchUpload('intake', location, at, blob.subarray(at, at + chunkSize));
        await c.finishUpload('intake', location, digest, at, blob.subarray(at));
      },
    },
  ];
  const out = modes.map((m) => ({ mode: m.mode, bytes: blob.length, ms: [] as number[] }));
  for (let round = 0; round < runs; round++) {
    for (const [i, m] of modes.entries()) {
      const reg = await startRegistry();
      try {
        const client = new RegistryClient({ registry: reg.host, insecure: true });
        const started = performance.now();
        const { location } = await client.startUpload('intake');
        await m.upload(client, location);
        out[i]!.ms.push(performance.now() - started);
      } finally {
        await reg.stop();
      }
    }
  }
  return out;
}
