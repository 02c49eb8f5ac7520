import type { Connection } from 'jsforce';
import { StreamingExtension } from 'jsforce/api/streaming';
import { BanyanError, errorMessage } from '../../core';
import { isAuthenticationFailure, isInvalidReplayId, parseBayeuxError } from '../../clients/salesforce/errors';
import type { RawChangeMessage } from './event';

/**
 * Why a subscription stopped: the session ended (`auth`), the replayId is no longer retained
 * (`replay-invalid`), or another refusal or silence (`subscribe`).
 */
export type StreamFailureKind = 'auth' | 'replay-invalid' | 'subscribe';

export class StreamFailure extends BanyanError {
  constructor(
    readonly kind: StreamFailureKind,
    message: string,
    readonly replayFrom: number,
  ) {
    // Retriable: the runner reconnects, and connect() re-subscribes or applies the expired-replayId policy.
    super(message, { retriable: true, stage: 'receiving', code: `CDC_${kind.toUpperCase().replace('-', '_')}` });
  }
}

type BayeuxMessage = {
  channel?: string;
  successful?: boolean;
  error?: unknown;
  advice?: { reconnect?: string };
  ext?: { sfdc?: { failureReason?: unknown } };
};

/** The faye client jsforce hands out (faye ships no types). */
interface FayeClient {
  subscribe(channel: string, listener: (message: RawChangeMessage) => void): PromiseLike<unknown>;
  disconnect(): unknown;
  _advice?: { reconnect?: string };
}

export interface StreamHandlers {
  event(message: RawChangeMessage): void;
  /** A failure after the subscription was acknowledged (a later re-handshake or re-subscription failed). */
  failure(failure: StreamFailure): void;
}

/**
 * One Streaming API subscription to one change-event channel, with replay. One faye client per
 * channel and per subscription: the Replay extension holds a single replayId, and the client keeps
 * the access token it was created with, so a new session or a new starting point means a new client.
 *
 * faye re-handshakes by itself after `403::Unknown client` and re-subscribes from the last replayId
 * it delivered. What it does not report is a failed re-subscription or an ended session (it just
 * stops): a watching extension turns those into `failure`, so the source never stalls silently.
 */
export class ChangeStream {
  private client: FayeClient | undefined;
  private closed = false;

  constructor(
    private readonly conn: Connection,
    readonly channel: string,
    private readonly handlers: StreamHandlers,
  ) {}

  /** Subscribes from `replayFrom` (-1 new events, -2 all retained, or the last replayId processed). */
  async open(replayFrom: number, timeoutMs: number): Promise<void> {
    let settle: ((failure?: StreamFailure) => void) | undefined;
    const acknowledged = new Promise<void>((resolve, reject) => {
      settle = (failure) => {
        settle = undefined;
        clearTimeout(timer);
        if (failure) reject(failure);
        else resolve();
      };
    });
    const timer = setTimeout(
      () => settle?.(new StreamFailure('subscribe', `no answer to the subscription to ${this.channel} within ${timeoutMs} ms`, replayFrom)),
      timeoutMs,
    );
    const report = (failure: StreamFailure) => {
      if (this.closed) return;
      if (settle) settle(failure);
      else this.handlers.failure(failure);
    };
    const watcher = {
      incoming: (message: BayeuxMessage, callback: (m: BayeuxMessage) => void) => {
        const failure = this.failureOf(message, replayFrom);
        if (failure) report(failure);
        callback(message);
      },
    };
    const client = this.conn.streaming.createClient([new StreamingExtension.Replay(this.channel, replayFrom), watcher]) as unknown as FayeClient;
    this.client = client;
    client
      .subscribe(this.channel, (message) => {
        if (!this.closed) this.handlers.event(message);
      })
      .then(
        () => settle?.(),
        // faye's own error prints as Bayeux's `code:args:message`; the watcher has usually classified it already.
        (error: unknown) => {
          const text = error && typeof error === 'object' && 'code' in error ? String(error) : errorMessage(error);
          settle?.(this.failureOf({ channel: '/meta/subscribe', successful: false, error: text }, replayFrom));
        },
      );
    try {
      await acknowledged;
    } catch (error) {
      this.close();
      throw error;
    }
  }

  private failureOf(message: BayeuxMessage, replayFrom: number): StreamFailure | undefined {
    if (message.successful !== false) return undefined;
    const error = parseBayeuxError(message.error);
    const text = `${this.channel}: ${String(message.error ?? 'refused')}`;
    const meta = message.channel === '/meta/subscribe' || message.channel === '/meta/handshake' || message.channel === '/meta/connect';
    if (meta && isAuthenticationFailure(message)) return new StreamFailure('auth', text, replayFrom);
    if (message.channel === '/meta/subscribe') {
      return new StreamFailure(isInvalidReplayId(error) ? 'replay-invalid' : 'subscribe', text, replayFrom);
    }
    if (meta) {
      // faye gives up after `reconnect: none`; anything else (Unknown client…) it retries itself.
      if (message.advice?.reconnect === 'none') return new StreamFailure('subscribe', text, replayFrom);
    }
    return undefined;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    client.disconnect();
    // A client that is not connected (handshake retrying against a server that is down) ignores
    // disconnect(); faye stops retrying only under `reconnect: none` advice.
    if (client._advice) client._advice.reconnect = 'none';
  }
}
