import type { SourceRecord } from '../../core';
import type { Logger } from '../../runtime/logger';
import type { CdcOptions } from './config';
import { modstampOf } from './fields';
import type { GapReconciler, RereadPage } from './gap-reconciler';
import { reconciledRecord, rereadHeader, type ReconcileTrigger, type RecordTarget } from './records';

export interface RereadResult {
  records: SourceRecord[];
  /** The newest SystemModstamp read so far (null before the first row): where a restarted re-read resumes. */
  watermark: number | null;
  done: boolean;
  truncated: boolean;
}

/**
 * A bounded re-read of one SObject by `SystemModstamp >= since`, page by page, as reconciled
 * records. Runs after a GAP_OVERFLOW (within that event's batch) and after an expired replayId
 * (one page per poll, its progress stored as the offset's commitTimestamp, so a restart resumes it).
 */
export class Reread {
  private pages: AsyncGenerator<RereadPage> | undefined;
  private watermark: number | null = null;
  private count = 0;
  private readonly trigger: ReconcileTrigger;

  constructor(
    private readonly reconciler: GapReconciler,
    private readonly target: RecordTarget,
    private readonly options: CdcOptions,
    /** The replayId the records are positioned at: the GAP_OVERFLOW event's, or the expired one. */
    readonly replayId: number,
    private readonly since: number,
    private readonly logger: Logger,
    private readonly purpose: string,
    trigger?: ReconcileTrigger,
  ) {
    this.trigger = trigger ?? { header: rereadHeader(), replayId: null, echo: false };
  }

  async next(signal?: AbortSignal): Promise<RereadResult> {
    if (!this.pages) {
      this.logger.warn(
        { event: 'cdc.reread_started', object: this.target.shape.object, cause: this.trigger.header.changeType, since: new Date(this.since).toISOString(), maxRecords: this.options.rereadMaxRecords },
        `re-reading ${this.target.shape.object} records modified since ${new Date(this.since).toISOString()} (${this.trigger.header.changeType})`,
      );
      this.pages = this.reconciler.readSince(this.since, this.options.rereadMaxRecords, this.purpose, signal);
    }
    const next = await this.pages.next();
    const page: RereadPage = next.done ? { rows: [], truncated: false, done: true } : next.value;
    const records = page.rows.map((row) => {
      const modstamp = modstampOf(row);
      if (modstamp !== undefined && (this.watermark === null || modstamp > this.watermark)) this.watermark = modstamp;
      return reconciledRecord(this.target.shape.object, row, this.trigger, this.target);
    });
    this.count += records.length;
    if (page.done) this.finished(page.truncated);
    return { records, watermark: this.watermark, done: page.done, truncated: page.truncated };
  }

  /** Every page at once (GAP_OVERFLOW: the re-read goes in its event's transaction). */
  async all(signal?: AbortSignal): Promise<SourceRecord[]> {
    const records: SourceRecord[] = [];
    for (;;) {
      const page = await this.next(signal);
      records.push(...page.records);
      if (page.done) return records;
    }
  }

  private finished(truncated: boolean): void {
    const object = this.target.shape.object;
    if (truncated) {
      this.logger.error(
        { event: 'cdc.reread_truncated', object, records: this.count, maxRecords: this.options.rereadMaxRecords, watermark: this.watermark },
        `re-read of ${object} stopped at rereadMaxRecords=${this.options.rereadMaxRecords}: records modified after ${this.watermark === null ? '?' : new Date(this.watermark).toISOString()} were not re-read`,
      );
    } else {
      this.logger.info({ event: 'cdc.reread_finished', object, records: this.count }, `re-read of ${object} finished: ${this.count} records`);
    }
  }

  async close(): Promise<void> {
    await this.pages?.return(undefined);
  }
}
