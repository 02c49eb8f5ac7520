import type { Json } from '../core';

/** The kinds of pipeline one runtime drives. */
export type PipelineKind = 'source' | 'transform' | 'sink';

/** What a person (or /status, /readyz, /metrics) sees of one running pipeline, whatever its kind. */
export interface PipelineStatus {
  name: string;
  kind: PipelineKind;
  /**
   * `connecting`: a connect attempt after a failure (lastError tells the last one); `fenced`: another
   * instance took over the pipeline's transactional id; this one has stopped writing.
   */
  state: 'starting' | 'connecting' | 'running' | 'backing-off' | 'fenced' | 'stopped';
  /** Records written to Kafka (sources: changes; transforms: events). */
  records: number;
  deadLetters: number;
  transactions: number;
  lastCommitAt: string | null;
  lastError: string | null;
  /** The pipeline's own account (snapshot progress, position, inputs, drops by reason…). */
  details: Record<string, Json>;
}

/** A source's status: a pipeline status of kind `source`. */
export type SourceStatus = PipelineStatus;

/** A running pipeline, as Pipelines and the status server see it. */
export interface Pipeline {
  readonly name: string;
  readonly kind: PipelineKind;
  readonly status: PipelineStatus;
  /** Resolves after the first connect attempt (see SourceRunner.start); rejects when it cannot ever work. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** DI token: pipelines other than sources (transforms, sinks) are multi-bound to it by their stage's module. */
export const Pipeline = Symbol.for('banyan.Pipeline');

/** Waits that double after each failure, from `min` up to `max`, and start over after a success. */
export class Backoff {
  private wait: number;

  constructor(
    private readonly min: number,
    private readonly max: number,
  ) {
    this.wait = min;
  }

  next(): number {
    const wait = this.wait;
    this.wait = Math.min(this.wait * 2, this.max);
    return wait;
  }

  reset(): void {
    this.wait = this.min;
  }
}

/** Rejects as soon as `signal` aborts; `undo` then cleans up after `work` if it succeeds later. */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal, undo?: (value: T) => unknown): Promise<T> {
  if (signal.aborted) {
    void work.then((value) => undo?.(value), () => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      void work.then((value) => undo?.(value), () => undefined);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
