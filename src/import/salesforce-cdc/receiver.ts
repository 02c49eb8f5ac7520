import type { Connection } from 'jsforce';
import type { Logger } from '../../runtime/logger';
import { replayIdOf, type RawChangeMessage } from './event';
import { ChangeStream, StreamFailure } from './stream';

export interface Received {
  message: RawChangeMessage;
  /** When it arrived (local clock), for the GAP_* collection window. */
  at: number;
}

export interface ReceiverOptions {
  queueCapacity: number;
  subscribeTimeoutMs: number;
}

/**
 * Holds the pushed events between polls. The queue is bounded: when it is full the subscription
 * is closed and, once `poll` has drained half of it, opened again from the last queued replayId.
 * Durable replay is the backpressure, so nothing is dropped and memory stays bounded.
 */
export class EventReceiver {
  private stream: ChangeStream | undefined;
  private queue: Received[] = [];
  private failure: StreamFailure | undefined;
  private wake: (() => void) | undefined;
  private paused = false;
  private lastQueued: number | undefined;
  /** The first replayId ever received (kept across reconnects). */
  firstReceived: number | undefined;
  pauses = 0;

  constructor(
    private readonly connection: () => Connection,
    readonly channel: string,
    private readonly options: ReceiverOptions,
    private readonly logger: Logger,
    private readonly renewSession: () => Promise<void>,
  ) {}

  get depth(): number {
    return this.queue.length;
  }

  /** Subscribes from `replayFrom`; an ended session is renewed once on the spot. */
  async subscribe(replayFrom: number, renewed = false): Promise<void> {
    const stream = new ChangeStream(this.connection(), this.channel, {
      event: (message) => this.onEvent(stream, message),
      failure: (failure) => this.onFailure(stream, failure),
    });
    try {
      await stream.open(replayFrom, this.options.subscribeTimeoutMs);
    } catch (error) {
      if (!(error instanceof StreamFailure && error.kind === 'auth') || renewed) throw error;
      await this.renewSession();
      return this.subscribe(replayFrom, true);
    }
    this.stream = stream;
    this.logger.info({ event: 'cdc.subscribed', channel: this.channel, replayFrom }, `subscribed to ${this.channel} from replayId ${replayFrom}`);
  }

  private onEvent(stream: ChangeStream, message: RawChangeMessage): void {
    if (stream !== this.stream) return;
    this.queue.push({ message, at: Date.now() });
    this.lastQueued = replayIdOf(message) ?? this.lastQueued;
    this.firstReceived ??= this.lastQueued;
    if (this.queue.length >= this.options.queueCapacity && !this.paused) {
      this.paused = true;
      this.pauses += 1;
      this.stream = undefined;
      stream.close();
      this.logger.info({ event: 'cdc.backpressure', channel: this.channel, queued: this.queue.length }, 'event queue full: unsubscribed until it drains');
    }
    this.wake?.();
  }

  private onFailure(stream: ChangeStream, failure: StreamFailure): void {
    if (stream !== this.stream) return;
    this.failure = failure;
    this.logger.warn({ event: 'cdc.stream_failed', channel: this.channel, kind: failure.kind, reason: failure.message }, 'the change stream stopped; reconnecting');
    this.wake?.();
  }

  /** Subscribes again after a backpressure pause once the queue is half empty. */
  async resumeIfDrained(fallback: number): Promise<void> {
    if (!this.paused || this.queue.length > this.options.queueCapacity / 2) return;
    this.paused = false;
    await this.subscribe(this.lastQueued ?? fallback);
    this.logger.info({ event: 'cdc.backpressure_resumed', channel: this.channel, replayFrom: this.lastQueued ?? fallback }, 'event queue drained: subscribed again');
  }

  take(n: number): Received[] {
    return this.queue.splice(0, Math.max(0, n));
  }

  /** The failure that stopped the stream, once (the caller throws it so the runner reconnects). */
  takeFailure(): StreamFailure | undefined {
    const failure = this.failure;
    this.failure = undefined;
    return failure;
  }

  /** Resolves when an event or a failure arrives, after `ms`, or on abort. */
  waitForEvents(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
      if (signal.aborted || this.failure || this.queue.length > 0) done();
    });
  }

  /** Drops the subscription and everything queued (a reconnect replays it from the committed offset). */
  close(): void {
    this.stream?.close();
    this.stream = undefined;
    this.queue = [];
    this.failure = undefined;
    this.paused = false;
    this.lastQueued = undefined;
    this.wake?.();
  }
}
