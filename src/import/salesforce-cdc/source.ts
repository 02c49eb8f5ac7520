import { BanyanError, partitionKey, type Json, type PollResult, type Source, type StartOffsets } from '../../core';
import type { WrittenFingerprints } from '../../runtime/salesforce-written';
import type { SalesforceClient } from '../../clients/salesforce/client';
import type { SalesforceCdcSourceConfig } from './config';
import type { Logger } from '../../runtime/logger';
import { sleep } from '../../core/time';
import { convertBatch, type BatchStats, type Position } from './batch';
import { cdcOptions, cdcTopic, changeEventChannel, sourceChannel, type CdcOptions } from './config';
import type { RawChangeMessage } from './event';
import { objectShape, type DescribeField } from './fields';
import { GapReconciler } from './gap-reconciler';
import { EventReceiver } from './receiver';
import type { CdcOffset, RecordTarget } from './records';
import { Reread } from './reread';
import { StreamFailure } from './stream';

export interface SalesforceCdcSourceDeps {
  client: SalesforceClient;
  logger: Logger;
  /** `salesforce.callOptionsClient`: changes whose changeOrigin names it are Banyan's own (echoes). */
  callOptionsClient: string;
  /**
   * What Banyan's Salesforce sinks last wrote to each record: a change that carries exactly that is
   * an echo too, whatever its changeOrigin says (src/runtime/salesforce-written.ts).
   */
  written?: EchoFingerprints;
  options?: Partial<CdcOptions>;
}

/** The part of WrittenFingerprints the source uses. */
export type EchoFingerprints = Pick<WrittenFingerprints, 'start' | 'stop' | 'catchUp' | 'takeEcho'>;

/** Counters of one CDC source, for status pages and metrics. */
export interface CdcSourceStats extends BatchStats {
  replayExpired: number;
  /** Starts whose stored replayId was a position on another channel (the source's channel changed). */
  channelChanges: number;
  rereadRecords: number;
  rereadTruncated: number;
  backpressurePauses: number;
  queueDepth: number;
  lastReplayId: number | null;
  lastCommitTimestamp: number | null;
  /** REST API calls this source made, by purpose (describe, gap, overflow, reread), retries included. */
  apiCalls: Record<string, number>;
}

const isGap = (m: RawChangeMessage) => {
  const type = (m.payload?.ChangeEventHeader as { changeType?: unknown } | undefined)?.changeType;
  return typeof type === 'string' && type.startsWith('GAP_') && type !== 'GAP_OVERFLOW';
};

/**
 * Salesforce Change Data Capture for one SObject into `salesforce.<SObject>` (docs/salesforce-cdc.md).
 * The Streaming API pushes events into a bounded queue; `poll` turns them into records. The offset
 * `{ replayId, commitTimestamp }` is the last event handed over; the runner stores it in the batch's
 * transaction and hands it back to `connect`, which subscribes right after it. GAP_* events are
 * reconciled through REST; GAP_OVERFLOW and an expired replayId re-read records by SystemModstamp.
 */
export class SalesforceCdcSource implements Source {
  readonly name: string;
  readonly channel: string;
  private readonly topic: string;
  private readonly partition: Record<string, Json>;
  private readonly options: CdcOptions;
  private readonly receiver: EventReceiver;
  private readonly stats: BatchStats & Pick<CdcSourceStats, 'replayExpired' | 'channelChanges' | 'rereadRecords' | 'rereadTruncated' | 'lastReplayId' | 'lastCommitTimestamp'>;
  private target: RecordTarget | undefined;
  private reconciler: GapReconciler | undefined;
  /** Position after what poll has handed over (committed or about to be); reset by connect. */
  private cursor: Position = { replayId: undefined, commitTimestamp: null };
  private reread: Reread | undefined;
  /** The channel a running re-read's replayId belongs to: what its offsets keep until new events are written. */
  private rereadChannel: string;
  private sessionEnded = false;
  /** Set once subscribed, cleared by close: an emptied receiver with no subscription is never polled. */
  private connected = false;

  constructor(
    private readonly config: SalesforceCdcSourceConfig,
    private readonly deps: SalesforceCdcSourceDeps,
  ) {
    this.name = config.name;
    this.topic = cdcTopic(config);
    this.channel = sourceChannel(config);
    this.rereadChannel = this.channel;
    this.partition = { object: config.object };
    this.options = cdcOptions(config, deps.options);
    this.receiver = new EventReceiver(() => deps.client.connection, this.channel, this.options, deps.logger, () => deps.client.refreshSession());
    this.stats = {
      events: 0, records: 0, echoes: 0, fingerprintEchoes: 0, deadLetters: 0, gapEvents: 0, reconciledRecords: 0, overflowEvents: 0, otherEntityEvents: 0,
      replayExpired: 0, channelChanges: 0, rereadRecords: 0, rereadTruncated: 0, lastReplayId: null, lastCommitTimestamp: null,
    };
  }

  status(): CdcSourceStats {
    const prefix = `${this.name}:`;
    const apiCalls = Object.fromEntries(
      Object.entries(this.deps.client.usage().callsByPurpose).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]),
    );
    return { ...this.stats, backpressurePauses: this.receiver.pauses, queueDepth: this.receiver.depth, apiCalls };
  }

  details(): Record<string, Json> {
    return { object: this.config.object, ...(this.status() as unknown as Record<string, Json>) };
  }

  async connect(start: StartOffsets): Promise<void> {
    await this.close();
    try {
      await this.open(start);
    } catch (error) {
      // The Source contract: a connect that fails leaves the source closed (no half-made subscription).
      await this.close().catch(() => undefined);
      throw error;
    }
    this.connected = true;
  }

  /** Logs in, describes the object once, and subscribes from the committed replayId. */
  private async open(start: StartOffsets): Promise<void> {
    const client = this.deps.client;
    await Promise.all([client.connect(), this.deps.written?.start()]);
    if (this.sessionEnded) await client.refreshSession();
    this.sessionEnded = false;
    if (!this.target) {
      const describe = await client.call(`${this.name}:describe`, `describe ${this.config.object}`, (conn) => conn.describe(this.config.object));
      const shape = objectShape(this.config.object, describe.fields as unknown as DescribeField[]);
      this.target = { topic: this.topic, shape };
      this.reconciler = new GapReconciler(client, shape, this.options.reconcileBatchSize);
    }
    const stored = start.get(partitionKey(this.name, this.partition)) as Partial<CdcOffset> | undefined;
    const replayId = typeof stored?.replayId === 'number' ? stored.replayId : undefined;
    const commitTimestamp = typeof stored?.commitTimestamp === 'number' ? stored.commitTimestamp : null;
    // Offsets written before the channel was stored were positions on the object's own channel.
    const storedChannel = typeof stored?.channel === 'string' ? stored.channel : changeEventChannel(this.config.object);
    this.cursor = { replayId, commitTimestamp };
    this.rereadChannel = this.channel;
    if (replayId === undefined) {
      // No offset yet: "from now" (-1) became a place once the first event arrived; a reconnect resumes there.
      const first = this.receiver.firstReceived;
      await this.receiver.subscribe(this.options.replayFrom === -1 && first !== undefined ? first - 1 : this.options.replayFrom);
    } else if (storedChannel !== this.channel) {
      // replayIds are per channel: one of another channel is no position on this one.
      this.stats.channelChanges += 1;
      await this.positionLost(replayId, commitTimestamp, storedChannel, 'channel-changed', `the stored replayId is a position on ${storedChannel}; the source now subscribes to ${this.channel}`);
    } else {
      try {
        await this.receiver.subscribe(replayId);
      } catch (error) {
        if (!(error instanceof StreamFailure && error.kind === 'replay-invalid')) throw error;
        this.stats.replayExpired += 1;
        await this.positionLost(replayId, commitTimestamp, storedChannel, 'expired', error.message);
      }
    }
  }

  /**
   * The stored replayId cannot be subscribed from: no longer retained, or a position on another
   * channel. The documented policy (replayExpiredPolicy), loudly.
   */
  private async positionLost(replayId: number, commitTimestamp: number | null, storedChannel: string, kind: 'expired' | 'channel-changed', reason: string): Promise<void> {
    // Without a commit time there is nothing to bound a re-read by.
    const policy = commitTimestamp === null && this.options.replayExpiredPolicy === 'reread' ? 'latest' : this.options.replayExpiredPolicy;
    const since = commitTimestamp === null ? null : commitTimestamp - this.options.rereadLookbackMs;
    const what = kind === 'expired' ? `replayId ${replayId} of ${this.channel} is no longer retained` : `replayId ${replayId} is a position on ${storedChannel}, not on ${this.channel}`;
    this.deps.logger.error(
      { event: kind === 'expired' ? 'cdc.replay_expired' : 'cdc.channel_changed', channel: this.channel, storedChannel, replayId, commitTimestamp, policy, reason },
      `${what}: ` +
        (policy === 'fail' ? 'stopping (replayExpiredPolicy: fail)'
          : policy === 'latest' ? 'continuing with new events only; changes in between are NOT re-read'
          : `re-reading ${this.config.object} records modified since ${new Date(since!).toISOString()}, then continuing with new events`),
    );
    if (policy === 'fail') {
      throw new BanyanError(`${what}; reset the source's offset to go on`, {
        retriable: false, stage: 'receiving', code: kind === 'expired' ? 'CDC_REPLAY_EXPIRED' : 'CDC_CHANNEL_CHANGED',
      });
    }
    // Subscribe first, re-read second: a change made while the re-read runs is then in the stream.
    await this.receiver.subscribe(-1);
    if (policy === 'reread') {
      // The re-read's offsets stay positions on the stored channel: a restart during it comes back here and resumes it.
      this.rereadChannel = storedChannel;
      this.reread = new Reread(this.reconciler!, this.target!, this.options, replayId, since!, this.deps.logger, `${this.name}:reread`);
    }
  }

  async poll(signal: AbortSignal): Promise<PollResult> {
    if (!this.connected) {
      throw new BanyanError(`${this.channel} is polled while not subscribed`, { retriable: true, stage: 'receiving', code: 'NOT_CONNECTED' });
    }
    if (this.reread) return this.pollReread(signal);
    await this.receiver.resumeIfDrained(this.cursor.replayId ?? this.options.replayFrom);
    await this.receiver.waitForEvents(this.config.pollIntervalMs, signal);
    if (this.receiver.depth === 0) {
      const failure = this.receiver.takeFailure();
      if (failure) {
        if (failure.kind === 'auth') this.sessionEnded = true;
        throw failure;
      }
      return empty();
    }
    const batch = this.receiver.take(this.config.batchSize);
    const firstGap = batch.find((q) => isGap(q.message));
    if (firstGap) {
      // Collect more GAP_* ids for a short window, to read them in fewer calls.
      await sleep(Math.max(0, firstGap.at + this.options.gapWindowMs - Date.now()), signal);
      batch.push(...this.receiver.take(this.config.batchSize - batch.length));
    }
    // Every fingerprint a sink committed before this batch's changes were made is known before they are judged.
    await this.deps.written?.catchUp(signal);
    const { records, deadLetters, position } = await convertBatch(
      batch.map((q) => q.message),
      this.cursor,
      {
        target: this.target!, reconciler: this.reconciler!, options: this.options, logger: this.deps.logger, channel: this.channel,
        multiEntity: this.channel !== changeEventChannel(this.config.object),
        clientId: this.deps.callOptionsClient, ...(this.deps.written ? { written: this.deps.written } : {}), purpose: (kind) => `${this.name}:${kind}`, stats: this.stats,
      },
      signal,
    );
    this.cursor = position;
    const offset = position.replayId === undefined ? undefined : ({ replayId: position.replayId, commitTimestamp: position.commitTimestamp, channel: this.channel } satisfies CdcOffset);
    return {
      records,
      deadLetters,
      offsets: offset ? [{ partition: this.partition, offset }] : [],
      ack: async () => this.committed(offset),
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
    // Progress is the newest SystemModstamp read: a restart re-reads from there, not from the start.
    const offset = page.watermark === null ? undefined : ({ replayId: reread.replayId, commitTimestamp: page.watermark, channel: this.rereadChannel } satisfies CdcOffset);
    if (offset) this.cursor = { ...offset };
    return {
      records: page.records,
      deadLetters: [],
      offsets: offset && page.records.length ? [{ partition: this.partition, offset }] : [],
      ack: async () => this.committed(offset),
    };
  }

  private committed(offset: CdcOffset | undefined): void {
    if (!offset) return;
    this.stats.lastReplayId = offset.replayId;
    this.stats.lastCommitTimestamp = offset.commitTimestamp;
  }

  async close(): Promise<void> {
    this.connected = false;
    this.receiver.close();
    // Followed while connected: a connect starts it again (reading the topic from its start).
    await this.deps.written?.stop();
    await this.reread?.close();
    this.reread = undefined;
  }
}

function empty(): PollResult {
  return { records: [], deadLetters: [], offsets: [], ack: async () => undefined };
}
