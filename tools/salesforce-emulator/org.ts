import { Sessions, type Credentials, ORG } from './auth.js';
import { ChangeEventLog } from './cdc.js';
import { EventChannels } from './channels.js';
import type { EmulatorClock } from './clock.js';
import { ApiError } from './errors.js';
import { BulkIngest, type BulkOptions } from './bulk-jobs.js';
import { ApiUsage, FaultInjector } from './faults.js';
import { makeId } from './ids.js';
import type { Schema } from './schema.js';
import { Store, Transaction } from './store.js';

export interface OrgOptions {
  schema: Schema;
  clock: EmulatorClock;
  credentials: Credentials;
  sessionTtlMs: number;
  dailyApiRequests: number;
  eventRetentionMs: number;
  firstCommitNumber?: bigint;
  bulk?: BulkOptions;
}

/** Query results not yet fetched, addressed by `nextRecordsUrl`; dropped after 15 minutes unused, as documented. */
interface Cursor {
  records: Record<string, unknown>[];
  totalSize: number;
  batchSize: number;
  lastUsed: number;
}

const CURSOR_IDLE_MS = 15 * 60 * 1000;

export interface Page {
  totalSize: number;
  done: boolean;
  records: Record<string, unknown>[];
  nextRecordsUrl?: string;
}

/** Everything one emulated org holds: data, sessions, change events, API usage and armed faults. */
export class Org {
  readonly schema: Schema;
  readonly clock: EmulatorClock;
  readonly credentials: Credentials;
  readonly faults = new FaultInjector();
  readonly store: Store;
  readonly events: ChangeEventLog;
  /** Custom channels and channel members (Tooling API PlatformEventChannel, PlatformEventChannelMember). */
  readonly channels: EventChannels;
  readonly sessions: Sessions;
  readonly usage: ApiUsage;
  /** Bulk API 2.0 ingest jobs, processed through `transact` like any other call's writes. */
  readonly bulk: BulkIngest;
  private cursors = new Map<string, Cursor>();
  private cursorCounter = 0;

  constructor(opts: OrgOptions) {
    this.schema = opts.schema;
    this.clock = opts.clock;
    this.credentials = opts.credentials;
    this.store = new Store(opts.schema, ORG.userId, this.faults.guard);
    this.channels = new EventChannels(opts.schema);
    this.events = new ChangeEventLog(opts.schema, this.channels, opts.clock, this.faults.nextPublishMode, opts.eventRetentionMs, opts.firstCommitNumber);
    this.sessions = new Sessions(opts.clock, opts.sessionTtlMs);
    this.usage = new ApiUsage(opts.clock, opts.dailyApiRequests);
    this.bulk = new BulkIngest(this, opts.bulk);
  }

  /** Runs one API call's writes as a transaction: committed and published as change events, or rolled back on a throw. */
  transact<T>(changeOrigin: string, work: (tx: Transaction) => T): T {
    const tx = new Transaction(this.clock.now());
    try {
      const result = work(tx);
      this.events.publish(tx.changes, changeOrigin, ORG.userId);
      return result;
    } catch (err) {
      tx.rollback();
      throw err;
    }
  }

  /** The first page of a result set; the rest waits behind a query locator. */
  firstPage(records: Record<string, unknown>[], totalSize: number, batchSize: number, version: string): Page {
    if (records.length <= batchSize) return { totalSize, done: true, records };
    const locator = makeId('01g', ++this.cursorCounter);
    this.cursors.set(locator, { records, totalSize, batchSize, lastUsed: this.clock.now() });
    return this.page(locator, 0, version);
  }

  /** `query/{locator}-{offset}`: the batch starting at offset. */
  nextPage(locatorAndOffset: string, version: string): Page {
    const match = /^(01g[A-Za-z0-9]{15})-(\d+)$/.exec(locatorAndOffset);
    const cursor = match ? this.cursors.get(match[1] as string) : undefined;
    if (!match || !cursor || this.clock.now() - cursor.lastUsed > CURSOR_IDLE_MS) {
      throw new ApiError(400, 'INVALID_QUERY_LOCATOR', 'invalid query locator');
    }
    return this.page(match[1] as string, Number(match[2]), version);
  }

  private page(locator: string, offset: number, version: string): Page {
    const cursor = this.cursors.get(locator) as Cursor;
    cursor.lastUsed = this.clock.now();
    const end = offset + cursor.batchSize;
    const records = cursor.records.slice(offset, end);
    if (end >= cursor.records.length) {
      this.cursors.delete(locator);
      return { totalSize: cursor.totalSize, done: true, records };
    }
    return { totalSize: cursor.totalSize, done: false, records, nextRecordsUrl: `/services/data/v${version}/query/${locator}-${end}` };
  }

  clearCursors(): void {
    this.cursors.clear();
  }
}
