/**
 * Bounded concurrency: run work over items with at most `limit` at once. The first failure stops new work
 * and is thrown once the work already started has ended (nothing is left running behind the caller's back).
 */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= { error: err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if (failed !== undefined) throw failed.error;
}

/** Maps items with at most `limit` at once, keeping their order. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  const indexed = items.map((item, index) => ({ item, index }));
  await forEachLimited(indexed, limit, async ({ item, index }) => {
    out[index] = await fn(item, index);
  });
  return out;
}
