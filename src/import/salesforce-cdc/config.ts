/**
 * Options of the Salesforce CDC source beyond `salesforceCdcSourceSchema` (name, topic, object,
 * pollIntervalMs, batchSize). Each has a default; the config schema can expose them one by one
 * with the same names and defaults.
 */
export interface CdcOptions {
  /**
   * Where to start when no replayId is stored: -1 = only changes from now on (Salesforce's
   * default), -2 = every event Salesforce still retains (up to 72 hours).
   */
  replayFrom: -1 | -2;
  /**
   * What to do when the stored replayId is no longer retained (the source was stopped longer than
   * the 72-hour retention): `reread` (re-read the records modified since the last commit time
   * through SOQL, bounded, emit them as reconciled, then go on with new events), `latest` (go on
   * with new events only, losing what happened in between), `fail` (stop the source; an operator
   * decides). Each case is logged at error level (`cdc.replay_expired`) and counted.
   */
  replayExpiredPolicy: 'reread' | 'latest' | 'fail';
  /** Upper bound of records one re-read (expired replayId, GAP_OVERFLOW) may emit; beyond it the re-read is cut short, loudly. */
  rereadMaxRecords: number;
  /**
   * Re-reads start this long before the last known commit time: a long transaction may have
   * stamped its rows (SystemModstamp) before a shorter one committed and was seen.
   */
  rereadLookbackMs: number;
  /** GAP_* events: how long record ids are collected before they are read in micro-batches. */
  gapWindowMs: number;
  /** Ids per `WHERE Id IN (…)` query when reconciling GAP_* events (Salesforce caps a useful IN list; at most 200). */
  reconcileBatchSize: number;
  /**
   * Events buffered between polls. When full, the stream is closed and re-subscribed later from
   * the last buffered replayId (durable replay is the backpressure: nothing is dropped).
   */
  queueCapacity: number;
  /** How long a subscription may take to be acknowledged before it counts as failed. */
  subscribeTimeoutMs: number;
}

export const DEFAULT_CDC_OPTIONS: CdcOptions = {
  replayFrom: -1,
  replayExpiredPolicy: 'reread',
  rereadMaxRecords: 50_000,
  rereadLookbackMs: 60_000,
  gapWindowMs: 1_000,
  reconcileBatchSize: 200,
  queueCapacity: 10_000,
  subscribeTimeoutMs: 30_000,
};

/** Fills defaults and checks ranges (values from a config file reach here already typed). */
export function cdcOptions(overrides: Partial<CdcOptions> = {}): CdcOptions {
  const options = { ...DEFAULT_CDC_OPTIONS, ...overrides };
  const problems: string[] = [];
  if (options.replayFrom !== -1 && options.replayFrom !== -2) problems.push('replayFrom must be -1 or -2');
  if (!['reread', 'latest', 'fail'].includes(options.replayExpiredPolicy)) problems.push('replayExpiredPolicy must be reread, latest or fail');
  if (!(options.reconcileBatchSize >= 1 && options.reconcileBatchSize <= 200)) problems.push('reconcileBatchSize must be 1…200');
  if (!(options.queueCapacity >= 2)) problems.push('queueCapacity must be at least 2');
  for (const key of ['rereadMaxRecords', 'subscribeTimeoutMs'] as const) if (!(options[key] > 0)) problems.push(`${key} must be positive`);
  for (const key of ['rereadLookbackMs', 'gapWindowMs'] as const) if (!(options[key] >= 0)) problems.push(`${key} must be 0 or more`);
  if (problems.length) throw new Error(`salesforce-cdc options: ${problems.join('; ')}`);
  return options;
}
