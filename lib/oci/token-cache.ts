/**
 * Tokens cached per scope set and fetched single-flight: forty parallel chunk requests needing the
 * same scopes cause one token request. Registries may refuse a token minted for other scopes, so the
 * key is the exact (sorted, de-duplicated) scope set.
 */

export function scopeKey(scopes: readonly string[]): string {
  return [...new Set(scopes)].sort().join(' ');
}

export class TokenCache<T> {
  private readonly values = new Map<string, T>();
  private readonly inflight = new Map<string, Promise<T>>();

  /** `usable(value)` says whether a cached value may still be handed out (not about to expire). */
  constructor(private readonly usable: (value: T) => boolean) {}

  /** A cached usable value, without fetching. */
  peek(scopes: readonly string[]): T | undefined {
    const value = this.values.get(scopeKey(scopes));
    return value !== undefined && this.usable(value) ? value : undefined;
  }

  /** The cached value, or the one `fetch` brings (shared by every caller asking meanwhile); `force` skips the cache. */
  get(scopes: readonly string[], fetch: () => Promise<T>, force = false): Promise<T> {
    const key = scopeKey(scopes);
    const running = this.inflight.get(key);
    if (running) return running;
    const cached = force ? undefined : this.peek(scopes);
    if (cached !== undefined) return Promise.resolve(cached);
    const p = fetch()
      .then((value) => {
        this.values.set(key, value);
        return value;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }
}
