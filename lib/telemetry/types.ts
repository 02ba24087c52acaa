/** The telemetry interface the app calls (lib/telemetry/index.ts) and the SDK implements (sdk.ts). Imports nothing. */

export type Attributes = Record<string, string | number | boolean | undefined>;

export interface SpanOptions {
  /** W3C traceparent of the parent span (a queue message's); absent: the active span, else a new trace. */
  readonly parent?: string;
  readonly kind?: 'server' | 'consumer' | 'internal';
  readonly attributes?: Attributes;
}

/** Counters and histograms the app records (lib/telemetry/sdk.ts creates them, names and units). */
export type CounterName = 'imports' | 'bytes' | 'sync.items' | 'sync.passes';
export type HistogramName = 'step.duration' | 'queue.wait';

export interface Telemetry {
  readonly enabled: boolean;
  /** Runs `fn` in a span (ended when it settles; an error sets its status and is rethrown). */
  span<T>(name: string, options: SpanOptions, fn: () => Promise<T>): Promise<T>;
  /** Adds attributes to the active span. */
  annotate(attributes: Attributes): void;
  /** The active span's W3C traceparent, for a message that continues the trace. */
  traceparent(): string | undefined;
  /** The active trace's id (for log lines). */
  traceId(): string | undefined;
  count(name: CounterName, value: number, attributes?: Attributes): void;
  record(name: HistogramName, value: number, attributes?: Attributes): void;
  /** Exports what is buffered (the host may freeze the process after an invocation). */
  flush(): Promise<void>;
}
