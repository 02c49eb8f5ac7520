import { errorMessage, type DeadLetter, type SourceRecord } from '../../core';
import type { Logger } from '../../runtime/logger';
import type { WrittenFingerprints, WrittenValue } from '../../runtime/salesforce-written';
import { changedOnly, flattenEventFields, type ObjectShape } from './fields';
import type { CdcOptions } from './config';
import { isEcho, parseChangeEvent, replayIdOf, type ChangeEvent, type RawChangeMessage } from './event';
import type { GapReconciler } from './gap-reconciler';
import { eventRecords, headerValue, reconciledRecord, vanishedRecord, type RecordTarget } from './records';
import { Reread } from './reread';

/** The counters a batch moves (a part of the source's status). */
export interface BatchStats {
  events: number;
  records: number;
  echoes: number;
  /** Events taken for echoes by the sinks' fingerprints (their changeOrigin did not name Banyan). */
  fingerprintEchoes: number;
  deadLetters: number;
  gapEvents: number;
  reconciledRecords: number;
  overflowEvents: number;
  /** Events of other entities on a multi-entity channel: not this source's, skipped. */
  otherEntityEvents: number;
}

export interface BatchContext {
  target: RecordTarget;
  reconciler: GapReconciler;
  options: CdcOptions;
  logger: Logger;
  channel: string;
  /**
   * Whether the channel carries other entities too (a custom channel, /data/ChangeEvents): their
   * events are skipped and counted. On the object's own channel another entity is bad input.
   */
  multiEntity: boolean;
  /** `salesforce.callOptionsClient`: a changeOrigin naming it marks an echo. */
  clientId: string;
  /** What Banyan's sinks last wrote: a change carrying exactly that is an echo too. */
  written?: Pick<WrittenFingerprints, 'takeEcho'>;
  /** The API-call counter name for a kind of call (`gap`, `overflow`). */
  purpose: (kind: string) => string;
  stats: BatchStats;
}

export interface Position {
  replayId: number | undefined;
  commitTimestamp: number | null;
}

/**
 * Turns a batch of received events into records, in order, starting from `from` (the position
 * after the previous batch). GAP_* record ids of the whole batch are read in one go (micro-batches
 * of ids); a GAP_OVERFLOW re-reads the entity inside this batch, so its offset only advances with
 * the re-read. An event that cannot be read becomes a dead letter and the batch goes on.
 */
export async function convertBatch(messages: RawChangeMessage[], from: Position, ctx: BatchContext, signal: AbortSignal): Promise<{ records: SourceRecord[]; deadLetters: DeadLetter[]; position: Position }> {
  const { target, stats } = ctx;
  const object = target.shape.object;
  const records: SourceRecord[] = [];
  const deadLetters: DeadLetter[] = [];
  const events: Array<ChangeEvent | 'other' | undefined> = messages.map((message) => {
    if (ctx.multiEntity && isOtherEntity(message, object)) return 'other';
    try {
      return parseChangeEvent(message, object);
    } catch (error) {
      deadLetters.push(deadLetter(message, error, object, ctx.channel, target.topic));
      return undefined;
    }
  });
  const gapIds = events.flatMap((e) => (e && e !== 'other' && e.header.changeType.startsWith('GAP_') ? e.header.recordIds : []));
  const rows = gapIds.length ? await ctx.reconciler.readByIds(gapIds, ctx.purpose('gap'), signal) : new Map<string, Record<string, unknown>>();
  const position = { ...from };
  for (const [i, event] of events.entries()) {
    if (!event || event === 'other') {
      // Skipped or dead-lettered, the position moves past it; another entity's commit time is still a commit time of the org.
      position.replayId = replayIdOf(messages[i]!) ?? position.replayId;
      if (event === 'other') {
        stats.otherEntityEvents += 1;
        const committed = (messages[i]!.payload?.ChangeEventHeader as { commitTimestamp?: unknown }).commitTimestamp;
        if (typeof committed === 'number' && Number.isFinite(committed)) position.commitTimestamp = committed;
      }
      continue;
    }
    const h = event.header;
    const byOrigin = isEcho(h.changeOrigin, ctx.clientId);
    const byFingerprint = !byOrigin && ctx.written !== undefined && writtenEcho(event, target.shape, ctx.written);
    if (byFingerprint) stats.fingerprintEchoes += 1;
    const echo = byOrigin || byFingerprint;
    const trigger = { header: headerValue(h), replayId: event.replayId, echo };
    if (h.changeType === 'GAP_OVERFLOW') {
      // From the last known commit time (or this event's), less the look-back for long transactions.
      const since = Math.min(position.commitTimestamp ?? h.commitTimestamp, h.commitTimestamp) - ctx.options.rereadLookbackMs;
      // Not marked echo even when the overflowing transaction was ours: the re-read also holds other writers' changes.
      const reread = new Reread(ctx.reconciler, target, ctx.options, event.replayId, since, ctx.logger, ctx.purpose('overflow'), { ...trigger, echo: false });
      records.push(...(await reread.all(signal)));
      stats.overflowEvents += 1;
    } else if (h.changeType.startsWith('GAP_')) {
      stats.gapEvents += 1;
      for (const id of h.recordIds) {
        const row = rows.get(id);
        records.push(row ? reconciledRecord(h.entityName, row, trigger, target) : vanishedRecord(h.entityName, id, trigger, target));
        stats.reconciledRecords += 1;
      }
    } else {
      const produced = eventRecords(event, target, echo);
      if (echo) stats.echoes += produced.length;
      records.push(...produced);
    }
    stats.events += 1;
    position.replayId = event.replayId;
    position.commitTimestamp = h.commitTimestamp;
  }
  stats.records += records.length;
  stats.deadLetters += deadLetters.length;
  return { records, deadLetters, position };
}

/** An event whose header names another entity (a well-formed header; anything else is left to the parser). */
function isOtherEntity(message: RawChangeMessage, object: string): boolean {
  const entity = (message?.payload?.ChangeEventHeader as { entityName?: unknown } | undefined)?.entityName;
  return typeof entity === 'string' && entity !== object;
}

function deadLetter(message: RawChangeMessage, error: unknown, object: string, channel: string, topic: string): DeadLetter {
  const replayId = replayIdOf(message);
  return {
    source: `salesforce:${object}`,
    reason: `event on ${channel}${replayId !== undefined ? ` at replayId ${replayId}` : ''}: ${errorMessage(error)}`,
    stage: 'processing',
    code: (error as { code?: string }).code ?? 'MALFORMED_EVENT',
    payload: message,
    topic,
    ...(replayId !== undefined ? { key: String(replayId) } : {}),
  };
}

/**
 * Whether a CREATE or UPDATE of one record carries exactly what a Banyan sink last wrote to it
 * (fields by REST name; the record found by its external id, which the channel enriches events
 * with). An event of several records is judged by its origin alone.
 */
function writtenEcho(event: ChangeEvent, shape: ObjectShape, written: Pick<WrittenFingerprints, 'takeEcho'>): boolean {
  const h = event.header;
  if ((h.changeType !== 'CREATE' && h.changeType !== 'UPDATE') || h.recordIds.length !== 1) return false;
  const flat = flattenEventFields(event.payload, shape);
  const dotted = h.changeType === 'UPDATE' ? changedOnly(flat, h.changedFields, h.nulledFields, shape).fields : Object.fromEntries(Object.entries(flat).filter(([, v]) => v !== null));
  const rest = restNames(shape);
  const byRestName = (fields: Record<string, WrittenValue>) => Object.fromEntries(Object.entries(fields).map(([name, value]) => [rest.get(name) ?? name, value]));
  return written.takeEcho(shape.object, byRestName(flat), byRestName(dotted), h.commitTimestamp, h.changeType === 'CREATE');
}

const REST_NAMES = new WeakMap<ObjectShape, Map<string, string>>();

/** Dotted compound component name → REST name (MailingAddress.City → MailingCity), per shape. */
function restNames(shape: ObjectShape): Map<string, string> {
  let names = REST_NAMES.get(shape);
  if (!names) {
    names = new Map([...shape.flatName].map(([restName, dotted]) => [dotted, restName]));
    REST_NAMES.set(shape, names);
  }
  return names;
}
