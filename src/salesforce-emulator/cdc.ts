import { createHash, randomUUID } from 'node:crypto';
import type { EmulatorClock } from './clock.js';
import type { FieldValues } from './coerce.js';
import { changeEventName, type FieldDef, type ObjectDef, type Schema } from './schema.js';
import type { RecordChange } from './store.js';

export const ALL_CHANGE_EVENTS_CHANNEL = '/data/ChangeEvents';
export const DEFAULT_RETENTION_MS = 72 * 60 * 60 * 1000;
/** Commit numbers only grow; Salesforce's are large system change numbers. */
const FIRST_COMMIT_NUMBER = 10_000_000_000;

/** How the next record change is published: as itself, as a GAP_* event, or folded into a GAP_OVERFLOW. */
export type PublishMode = 'normal' | 'gap' | 'overflow';

export interface StoredChangeEvent {
  replayId: number;
  entityName: string;
  publishedAt: number;
  schema: string;
  payload: Record<string, unknown>;
}

/** What a Bayeux subscriber receives on a change-event channel. */
export type ChangeEventMessage = {
  channel: string;
  data: { schema: string; payload: Record<string, unknown>; event: { replayId: number } };
};

export interface ChangeEventLogSnapshot {
  lastReplayId: number;
  lastCommitNumber: number;
  prunedThrough: number;
  events: StoredChangeEvent[];
}

/** The result of asking for replay from a position: the events to deliver, or an invalid position. */
export type ReplayResult = { ok: true; events: StoredChangeEvent[] } | { ok: false };

/**
 * The org's change events: built from committed record changes, kept for the retention window on
 * the emulator clock, replayed by replayId and pushed to live listeners (the CometD server).
 */
export class ChangeEventLog {
  private events: StoredChangeEvent[] = [];
  private lastReplayId = 0;
  private lastCommitNumber = FIRST_COMMIT_NUMBER;
  /** The newest replayId that retention has dropped; replaying from before it would skip events. */
  private prunedThrough = 0;
  private readonly listeners = new Set<(event: StoredChangeEvent) => void>();

  constructor(
    private readonly schema: Schema,
    private readonly clock: EmulatorClock,
    private readonly nextPublishMode: () => PublishMode,
    private readonly retentionMs = DEFAULT_RETENTION_MS,
  ) {}

  isChannel(channel: string): boolean {
    return channel === ALL_CHANGE_EVENTS_CHANNEL || this.schema.objects.some((o) => channel === `/data/${changeEventName(o.name)}`);
  }

  carries(channel: string, event: StoredChangeEvent): boolean {
    return channel === ALL_CHANGE_EVENTS_CHANNEL || channel === `/data/${changeEventName(event.entityName)}`;
  }

  onEvent(listener: (event: StoredChangeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Publishes one transaction's changes; `origin` becomes every event's changeOrigin. */
  publish(changes: readonly RecordChange[], origin: string, commitUser: string): void {
    if (changes.length === 0) return;
    const header = {
      changeOrigin: origin,
      transactionKey: randomUUID(),
      commitTimestamp: this.clock.now(),
      commitNumber: ++this.lastCommitNumber,
      commitUser,
    };
    const payloads: Record<string, unknown>[] = [];
    const overflowing = new Set<string>();
    for (const change of changes) {
      const mode = this.nextPublishMode();
      if (mode === 'overflow') overflowing.add(change.object.name);
      else payloads.push(mode === 'gap' ? this.gapPayload(change) : this.changePayload(change));
    }
    for (const entityName of overflowing) payloads.push(headerOnly(entityName, [], 'GAP_OVERFLOW'));
    payloads.forEach((payload, index) => {
      Object.assign(payload.ChangeEventHeader as object, header, { sequenceNumber: index + 1 });
      this.append(payload);
    });
  }

  /** Events on `channel` after `replayId` (-2: all retained, -1: none), or invalid when retention lost some. */
  replay(channel: string, replayId: number): ReplayResult {
    this.prune();
    if (replayId === -1) return { ok: true, events: [] };
    if (replayId !== -2 && (!Number.isInteger(replayId) || replayId < this.prunedThrough || replayId > this.lastReplayId)) {
      return { ok: false };
    }
    return { ok: true, events: this.events.filter((e) => e.replayId > replayId && this.carries(channel, e)) };
  }

  toMessage(channel: string, event: StoredChangeEvent): ChangeEventMessage {
    return { channel, data: { schema: event.schema, payload: event.payload, event: { replayId: event.replayId } } };
  }

  retained(): readonly StoredChangeEvent[] {
    this.prune();
    return this.events;
  }

  snapshot(): ChangeEventLogSnapshot {
    this.prune();
    return { lastReplayId: this.lastReplayId, lastCommitNumber: this.lastCommitNumber, prunedThrough: this.prunedThrough, events: this.events };
  }

  restore(snapshot: ChangeEventLogSnapshot): void {
    ({ lastReplayId: this.lastReplayId, lastCommitNumber: this.lastCommitNumber, prunedThrough: this.prunedThrough } = snapshot);
    this.events = [...snapshot.events];
    this.prune();
  }

  clear(): void {
    this.events = [];
    this.lastReplayId = 0;
    this.lastCommitNumber = FIRST_COMMIT_NUMBER;
    this.prunedThrough = 0;
  }

  private append(payload: Record<string, unknown>): void {
    this.prune();
    const header = payload.ChangeEventHeader as { entityName: string };
    const event: StoredChangeEvent = {
      replayId: ++this.lastReplayId,
      entityName: header.entityName,
      publishedAt: this.clock.now(),
      schema: schemaId(header.entityName),
      payload,
    };
    this.events.push(event);
    for (const listener of this.listeners) listener(event);
  }

  private prune(): void {
    const horizon = this.clock.now() - this.retentionMs;
    let dropped = 0;
    while (dropped < this.events.length && (this.events[dropped] as StoredChangeEvent).publishedAt < horizon) dropped++;
    if (dropped === 0) return;
    this.prunedThrough = (this.events[dropped - 1] as StoredChangeEvent).replayId;
    this.events = this.events.slice(dropped);
  }

  private gapPayload(change: RecordChange): Record<string, unknown> {
    return headerOnly(change.object.name, [change.id], `GAP_${change.changeType}`);
  }

  private changePayload(change: RecordChange): Record<string, unknown> {
    const payload = headerOnly(change.object.name, [change.id], change.changeType);
    const def = change.object;
    if (change.changeType === 'DELETE') return payload;
    if (change.changeType === 'UPDATE') {
      const header = payload.ChangeEventHeader as Record<string, string[]>;
      for (const name of change.changedFields) {
        const field = def.field(name) as FieldDef;
        const value = eventValue(field, change.record[name]);
        setEventField(payload, field, value);
        const path = field.compound ? `${field.compound.field}.${field.compound.component}` : field.name;
        header.changedFields?.push(path);
        if (value === null) header.nulledFields?.push(path);
      }
      return payload;
    }
    for (const field of def.fields) {
      if (field.computed || ['Id', 'IsDeleted', 'SystemModstamp'].includes(field.name)) continue;
      setEventField(payload, field, eventValue(field, change.record[field.name]));
    }
    collapseEmptyCompounds(def, payload);
    return payload;
  }
}

function headerOnly(entityName: string, recordIds: string[], changeType: string): Record<string, unknown> {
  return {
    ChangeEventHeader: { entityName, recordIds, changeType, changedFields: [], nulledFields: [], diffFields: [] },
  };
}

/** Change events carry datetimes in ISO-8601 UTC (`…Z`), unlike REST's `+0000`. */
function eventValue(field: FieldDef, value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (field.type === 'datetime') return new Date((value as string).replace(/([+-]\d{2})(\d{2})$/, '$1:$2')).toISOString();
  return value;
}

/** Compound components nest under their compound, e.g. `MailingAddress: {Street: …}`. */
function setEventField(payload: Record<string, unknown>, field: FieldDef, value: unknown): void {
  if (!field.compound) {
    payload[field.name] = value;
    return;
  }
  const nested = (payload[field.compound.field] ??= {}) as FieldValues;
  nested[field.compound.component] = value;
}

/** A compound with no component set is sent as null, as in Salesforce's examples (`ShippingAddress: null`). */
function collapseEmptyCompounds(def: ObjectDef, payload: Record<string, unknown>): void {
  for (const field of def.fields) {
    const nested = field.computed ? payload[field.name] : undefined;
    if (nested && typeof nested === 'object' && Object.values(nested).every((v) => v === null)) payload[field.name] = null;
  }
}

function schemaId(entityName: string): string {
  return createHash('sha256').update(changeEventName(entityName)).digest('base64url').slice(0, 22);
}
