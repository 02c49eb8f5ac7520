import {
  BanyanError,
  errorMessage,
  partitionKey,
  type DeadLetter,
  type Json,
  type PollResult,
  type Source,
  type SourceRecord,
  type StartOffsets,
} from '../../core';
import type { SalesforceClient } from '../../clients/salesforce/client';
import type { SalesforceCdcSourceConfig } from '../../runtime/config';
import type { Logger } from '../../runtime/logger';
import { sleep } from '../../runtime/time';
import { cdcOptions, type CdcOptions } from './config';
import { isEcho, parseChangeEvent, replayIdOf, type ChangeEvent, type RawChangeMessage } from './event';
import { objectShape, type DescribeField } from './fields';
import { GapReconciler } from './gap-reconciler';
import { eventRecords, headerValue, reconciledRecord, vanishedRecord, type CdcOffset, type RecordTarget } from './records';
import { Reread } from './reread';
import { ChangeStream, StreamFailure } from './stream';

export interface SalesforceCdcSourceDeps {
  client: SalesforceClient;
  logger: Logger;
  /** `salesforce.callOptionsClient`: changes whose changeOrigin names it are Banyan's own (echoes). */
  callOptionsClient: string;
  options?: Partial<CdcOptions>;
}

/** Counters of one CDC source, for status pages and metrics. */
export interface CdcSourceStats {
  events: number;
  records: number;
  echoes: number;
  deadLetters: number;
  gapEvents: number;
  reconciledRecords: number;
  overflowEvents: number;
  replayExpired: number;
  rereadRecords: number;
  rereadTruncated: number;
  backpressurePauses: number;
  queueDepth: number;
  lastReplayId: number | null;
  lastCommitTimestamp: number | null;
  /** REST API calls this source made, by purpose (describe, gap, overflow, reread), retries included. */
  apiCalls: Record<string, number>;
}

interface Queued {
  message: RawChangeMessage;
  at: number;
}

/** `/data/ContactChangeEvent`; custom objects drop the `c` of `__c` (`/data/Invoice__ChangeEvent`). */
export function changeEventChannel(object: string): string {
  return `/data/${object.endsWith('__c') ? object.slice(0, -1) : object}ChangeEvent`;
}

const isGap = (m: RawChangeMessage) => {
  const type = (m.payload?.ChangeEventHeader as { changeType?: unknown } | undefined)?.changeType;
  return typeof type === 'string' && type.startsWith('GAP_') && type !== 'GAP_OVERFLOW';
};

/**
 * Salesforce Change Data Capture for one SObject into `salesforce.<SObject>` (see
 * docs/salesforce-cdc.md). The Streaming API pushes events; they wait in a bounded queue until
 * `poll` turns them into records. The offset `{ replayId, commitTimestamp }` is the last event
 * written; the runner stores it in the batch's transaction and hands it back to `connect`, which
 * subscribes after it. GAP_* events are reconciled through REST, GAP_OVERFLOW and an expired
 * replayId re-read records by SystemModstamp.
 */
export class SalesforceCdcSource implements Source {
  readonly name: string;
  readonly channel: string;
  private readonly topic: string;
  private readonly partition: Record<string, Json>;
  private readonly options: CdcOptions;
  private readonly stats: Omit<CdcSourceStats, 'apiCalls' | 'queueDepth'>;
  private target: RecordTarget | undefined;
  private reconciler: GapReconciler | undefined;
  private stream: ChangeStream | undefined;
  private queue: Queued[] = [];
  private failure: StreamFailure | undefined;
  private wake: (() => void) | undefined;
  private paused = false;
  private lastQueued: number | undefined;
  /** Position of what poll has handed over so far (committed or about to be); reset by connect. */
  private cursor: { replayId: number | undefined; commitTimestamp: number | null } = { replayId: undefined, commitTimestamp: null };
  private reread: Reread | undefined;
  private sessionEnded = false;

  constructor(
    private readonly config: SalesforceCdcSourceConfig,
    private readonly deps: SalesforceCdcSourceDeps,
  ) {
    this.name = config.name;
    this.topic = config.topic ?? `salesforce.${config.object}`;
    this.channel = changeEventChannel(config.object);
    this.partition = { object: config.object };
    this.options = cdcOptions(deps.options);
    this.stats = {
      events: 0, records: 0, echoes: 0, deadLetters: 0, gapEvents: 0, reconciledRecords: 0, overflowEvents: 0,
      replayExpired: 0, rereadRecords: 0, rereadTruncated: 0, backpressurePauses: 0, lastReplayId: null, lastCommitTimestamp: null,
    };
  }

  partitions(): Array<Record<string, Json>> {
    return [this.partition];
  }

  status(): CdcSourceStats {
    const prefix = `${this.name}:`;
    const apiCalls = Object.fromEntries(
      Object.entries(this.deps.client.usage().callsByPurpose).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]),
    );
    return { ...this.stats, queueDepth: this.queue.length, apiCalls };
  }

  async connect(start: StartOffsets): Promise<void> {
    await this.close();
    const client = this.deps.client;
    await client.connect();
    if (this.sessionEnded) await client.refreshSession();
    this.sessionEnded = false;
    if (!this.target) {
      const describe = await client.call(`${this.name}:describe`, `describe ${this.config.object}`, (conn) => conn.describe(this.config.object));
      const shape = objectShape(this.config.object, describe.fields as unknown as DescribeField[]);
      this.target = { topic: this.topic, partition: this.partition, shape };
      this.reconciler = new GapReconciler(client, shape, this.options.reconcileBatchSize);
    }
    const stored = start.get(partitionKey(this.name, this.partition)) as Partial<CdcOffset> | undefined;
    const replayId = typeof stored?.replayId === 'number' ? stored.replayId : undefined;
    const commitTimestamp = typeof stored?.commitTimestamp === 'number' ? stored.commitTimestamp : null;
    this.cursor = { replayId, commitTimestamp };
    if (replayId === undefined) return this.subscribe(this.options.replayFrom);
    try {
      await this.subscribe(replayId);
    } catch (error) {
      if (!(error instanceof StreamFailure && error.kind === 'replay-invalid')) throw error;
      await this.replayExpired(replayId, commitTimestamp, error);
    }
  }

  /** Subscribes from `replayFrom`; an ended session is renewed once on the spot. */
  private async subscribe(replayFrom: number, renewed = false): Promise<void> {
    const stream = new ChangeStream(this.deps.client.connection, this.channel, {
      event: (message) => this.onEvent(stream, message),
      failure: (failure) => this.onFailure(stream, failure),
    });
    try {
      await stream.open(replayFrom, this.options.subscribeTimeoutMs);
    } catch (error) {
      if (!(error instanceof StreamFailure && error.kind === 'auth') || renewed) throw error;
      await this.deps.client.refreshSession();
      return this.subscribe(replayFrom, true);
    }
    this.stream = stream;
    this.deps.logger.info({ event: 'cdc.subscribed', channel: this.channel, replayFrom }, `subscribed to ${this.channel} from replayId ${replayFrom}`);
  }

  /** The stored replayId is no longer retained: the documented policy, loudly. */
  private async replayExpired(replayId: number, commitTimestamp: number | null, error: StreamFailure): Promise<void> {
    this.stats.replayExpired += 1;
    const policy = commitTimestamp === null && this.options.replayExpiredPolicy === 'reread' ? 'latest' : this.options.replayExpiredPolicy;
    this.deps.logger.error(
      { event: 'cdc.replay_expired', channel: this.channel, replayId, commitTimestamp, policy, reason: error.message },
      `replayId ${replayId} of ${this.channel} is no longer retained: ` +
        (policy === 'fail' ? 'stopping (replayExpiredPolicy: fail)'
          : policy === 'latest' ? 'continuing with new events only; changes in between are NOT re-read'
          : `re-reading ${this.config.object} records modified since ${new Date(commitTimestamp!).toISOString()}, then continuing with new events`),
    );
    if (policy === 'fail') {
      throw new BanyanError(`replayId ${replayId} of ${this.channel} expired; reset the source's offset to go on`, { retriable: false, stage: 'receiving', code: 'CDC_REPLAY_EXPIRED' });
    }
    // Subscribe first, re-read second: a change made while the re-read runs is then in the stream.
    await this.subscribe(-1);
    if (policy === 'reread') {
      this.reread = new Reread(this.reconciler!, this.target!, this.options, replayId, commitTimestamp! - this.options.rereadLookbackMs, this.deps.logger, `${this.name}:reread`);
    }
  }

  private onEvent(stream: ChangeStream, message: RawChangeMessage): void {
    if (stream !== this.stream) return;
    this.queue.push({ message, at: Date.now() });
    this.lastQueued = replayIdOf(message) ?? this.lastQueued;
    if (this.queue.length >= this.options.queueCapacity && !this.paused) {
      // Durable replay is the backpressure: stop receiving, subscribe again from the last queued event later.
      this.paused = true;
      this.stats.backpressurePauses += 1;
      this.stream = undefined;
      stream.close();
      this.deps.logger.info({ event: 'cdc.backpressure', queued: this.queue.length }, 'event queue full: unsubscribed until it drains');
    }
    this.wake?.();
  }

  private onFailure(stream: ChangeStream, failure: StreamFailure): void {
    if (stream !== this.stream) return;
    this.failure = failure;
    this.deps.logger.warn({ event: 'cdc.stream_failed', kind: failure.kind, reason: failure.message }, 'the change stream stopped; reconnecting');
    this.wake?.();
  }

  async poll(signal: AbortSignal): Promise<PollResult> {
    if (this.reread) return this.pollReread(signal);
    if (this.paused && this.queue.length <= this.options.queueCapacity / 2) {
      this.paused = false;
      await this.subscribe(this.lastQueued ?? this.cursor.replayId ?? this.options.replayFrom);
    }
    if (this.queue.length === 0) await this.waitForEvents(this.config.pollIntervalMs, signal);
    if (this.queue.length === 0) {
      if (this.failure) this.throwFailure();
      return empty();
    }
    const batch = this.take(this.config.batchSize);
    const firstGap = batch.find((q) => isGap(q.message));
    if (firstGap) {
      // Collect more GAP_* ids for a short window, to read them in fewer calls.
      await sleep(Math.max(0, firstGap.at + this.options.gapWindowMs - Date.now()), signal);
      batch.push(...this.take(this.config.batchSize - batch.length));
    }
    return this.convert(batch.map((q) => q.message), signal);
  }

  private throwFailure(): never {
    const failure = this.failure!;
    this.failure = undefined;
    if (failure.kind === 'auth') this.sessionEnded = true;
    throw failure;
  }

  private take(n: number): Queued[] {
    return this.queue.splice(0, Math.max(0, n));
  }

  private waitForEvents(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
      if (signal.aborted || this.failure) done();
    });
  }

  private async convert(messages: RawChangeMessage[], signal: AbortSignal): Promise<PollResult> {
    const target = this.target!;
    const records: SourceRecord[] = [];
    const deadLetters: DeadLetter[] = [];
    const events: Array<ChangeEvent | undefined> = messages.map((message) => {
      try {
        return parseChangeEvent(message, this.config.object);
      } catch (error) {
        deadLetters.push(this.deadLetter(message, error));
        return undefined;
      }
    });
    const gapIds = events.flatMap((e) => (e && e.header.changeType.startsWith('GAP_') ? e.header.recordIds : []));
    const rows = gapIds.length ? await this.reconciler!.readByIds(gapIds, `${this.name}:gap`, signal) : new Map();
    const position = { ...this.cursor };
    for (const [i, event] of events.entries()) {
      if (!event) {
        position.replayId = replayIdOf(messages[i]!) ?? position.replayId;
        continue;
      }
      const h = event.header;
      const offset: CdcOffset = { replayId: event.replayId, commitTimestamp: h.commitTimestamp };
      const echo = isEcho(h.changeOrigin, this.deps.callOptionsClient);
      const trigger = { header: headerValue(h), replayId: event.replayId, echo };
      if (h.changeType === 'GAP_OVERFLOW') {
        this.stats.overflowEvents += 1;
        const since = Math.min(position.commitTimestamp ?? h.commitTimestamp, h.commitTimestamp) - this.options.rereadLookbackMs;
        const reread = await new Reread(this.reconciler!, target, this.options, event.replayId, since, this.deps.logger, `${this.name}:overflow`, { ...trigger, echo: false }).all(signal);
        records.push(...reread.map((r) => ({ ...r, sourceOffset: offset })));
      } else if (h.changeType.startsWith('GAP_')) {
        this.stats.gapEvents += 1;
        for (const id of h.recordIds) {
          const row = rows.get(id);
          records.push(row ? reconciledRecord(h.entityName, row, trigger, target, offset) : vanishedRecord(h.entityName, id, trigger, target, offset));
          this.stats.reconciledRecords += 1;
        }
      } else {
        const produced = eventRecords(event, target, echo, offset);
        if (echo) this.stats.echoes += produced.length;
        records.push(...produced);
      }
      this.stats.events += 1;
      position.replayId = event.replayId;
      position.commitTimestamp = h.commitTimestamp;
    }
    this.cursor = position;
    this.stats.records += records.length;
    this.stats.deadLetters += deadLetters.length;
    const offset = position.replayId === undefined ? undefined : ({ replayId: position.replayId, commitTimestamp: position.commitTimestamp } satisfies CdcOffset);
    return {
      records,
      deadLetters,
      offsets: offset ? [{ partition: this.partition, offset }] : [],
      ack: async () => {
        this.stats.lastReplayId = offset?.replayId ?? this.stats.lastReplayId;
        this.stats.lastCommitTimestamp = offset?.commitTimestamp ?? this.stats.lastCommitTimestamp;
      },
    };
  }

  private async pollReread(signal: AbortSignal): Promise<PollResult> {
    const reread = this.reread!;
    const page = await reread.next(signal);
    this.stats.rereadRecords += page.records.length;
    this.stats.records += page.records.length;
    if (page.done) {
      this.reread = undefined;
      if (page.truncated) this.stats.rereadTruncated += 1;
    }
    const offset: CdcOffset = { replayId: reread.replayId, commitTimestamp: page.watermark };
    if (page.watermark !== null) this.cursor = { replayId: reread.replayId, commitTimestamp: page.watermark };
    return {
      records: page.records,
      deadLetters: [],
      offsets: page.records.length && page.watermark !== null ? [{ partition: this.partition, offset }] : [],
      ack: async () => undefined,
    };
  }

  private deadLetter(message: RawChangeMessage, error: unknown): DeadLetter {
    const replayId = replayIdOf(message);
    return {
      source: `salesforce:${this.config.object}`,
      reason: `event on ${this.channel}${replayId !== undefined ? ` at replayId ${replayId}` : ''}: ${errorMessage(error)}`,
      stage: 'processing',
      code: (error as { code?: string }).code ?? 'MALFORMED_EVENT',
      payload: message,
      ...(replayId !== undefined ? { key: String(replayId) } : {}),
    };
  }

  async close(): Promise<void> {
    this.stream?.close();
    this.stream = undefined;
    this.queue = [];
    this.failure = undefined;
    this.paused = false;
    this.lastQueued = undefined;
    await this.reread?.close();
    this.reread = undefined;
    this.wake?.();
  }
}

function empty(): PollResult {
  return { records: [], deadLetters: [], offsets: [], ack: async () => undefined };
}
