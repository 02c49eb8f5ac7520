import { createHash, randomUUID } from 'node:crypto';
import type { EventChannels } from './channels.js';
import type { EmulatorClock } from './clock.js';
import type { FieldValues } from './coerce.js';
import { changeEventName, type FieldDef, type ObjectDef, type Schema } from './schema.js';
import type { RecordChange } from './store.js';

export const ALL_CHANGE_EVENTS_CHANNEL = '/data/ChangeEvents';
export const DEFAULT_RETENTION_MS = 72 * 60 * 60 * 1000;
/**
 * Commit numbers only grow; Salesforce's are system change numbers of the size of its examples
 * (10708862594919). A bigint, written to JSON digit for digit, so a start beyond 2^53 stays exact.
 */
export const DEFAULT_FIRST_COMMIT_NUMBER = 10_708_862_594_919n;

/** How the next record change is published: as itself, as a GAP_* event, or folded into a GAP_OVERFLOW. */
export type PublishMode = 'normal' | 'gap' | 'overflow';

export interface StoredChangeEvent {
  replayId: number;
  entityName: string;
  publishedAt: number;
  schema: string;
  payload: Record<string, unknown>;
  /**
   * The member channels (custom ones, or `/data/ChangeEvents` when a member of it enriches) the event
   * was published to, by subscription path, each with the enriched fields it adds there (maybe none).
   * Taken when the change was published: the values are those current at the change, and a channel
   * or member made later does not carry older events.
   */
  channels?: Record<string, Record<string, unknown>>;
}

/** What a Bayeux subscriber receives on a change-event channel. */
export type ChangeEventMessage = {
  channel: string;
  data: { schema: string; payload: Record<string, unknown>; event: { replayId: number } };
};

export interface ChangeEventLogSnapshot {
  lastReplayId: number;
  lastCommitNumber: bigint;
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
  private lastCommitNumber: bigint;
  /** The newest replayId that retention has dropped; replaying from before it would skip events. */
  private prunedThrough = 0;
  private readonly listeners = new Set<(event: StoredChangeEvent) => void>();

  constructor(
    private readonly schema: Schema,
    private readonly channels: EventChannels,
    private readonly clock: EmulatorClock,
    private readonly nextPublishMode: () => PublishMode,
    private readonly retentionMs = DEFAULT_RETENTION_MS,
    private readonly firstCommitNumber = DEFAULT_FIRST_COMMIT_NUMBER,
  ) {
    this.lastCommitNumber = firstCommitNumber - 1n;
  }

  isChannel(channel: string): boolean {
    return channel === ALL_CHANGE_EVENTS_CHANNEL
      || this.schema.objects.some((o) => channel === `/data/${changeEventName(o.name)}`)
      || this.channels.isCustomPath(channel);
  }

  carries(channel: string, event: StoredChangeEvent): boolean {
    return channel === ALL_CHANGE_EVENTS_CHANNEL || channel === `/data/${changeEventName(event.entityName)}` || event.channels?.[channel] !== undefined;
  }

  onEvent(listener: (event: StoredChangeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Publishes one transaction's changes; `origin` becomes every event's changeOrigin. The same
   * UPDATE or DELETE of several records of one object merges into one event naming them all, as
   * Salesforce merges identical changes of one transaction within a second (the emulator gives a
   * whole transaction one time).
   */
  publish(changes: readonly RecordChange[], origin: string, commitUser: string): void {
    if (changes.length === 0) return;
    this.lastCommitNumber += 1n;
    const header = {
      changeOrigin: origin,
      transactionKey: randomUUID(),
      commitTimestamp: this.clock.now(),
      commitNumber: this.lastCommitNumber,
      commitUser,
    };
    const published: Published[] = [];
    const mergeable = new Map<string, Published>();
    const overflowing = new Map<string, ObjectDef>();
    for (const change of changes) {
      const mode = this.nextPublishMode();
      if (mode === 'overflow') {
        overflowing.set(change.object.name, change.object);
        continue;
      }
      if (mode === 'gap') {
        published.push({ payload: this.gapPayload(change), channels: this.memberChannels(change.object) });
        continue;
      }
      const payload = this.changePayload(change);
      const channels = this.memberChannels(change.object, change);
      // Records whose enriched values differ cannot share one event: each event carries one set of values.
      const sameChange = change.changeType === 'UPDATE' || change.changeType === 'DELETE' ? changeSignature(payload, channels) : undefined;
      const merged = sameChange === undefined ? undefined : mergeable.get(sameChange);
      if (merged) {
        (merged.payload.ChangeEventHeader as { recordIds: string[] }).recordIds.push(change.id);
        continue;
      }
      const entry = { payload, channels };
      if (sameChange !== undefined) mergeable.set(sameChange, entry);
      published.push(entry);
    }
    for (const [entityName, object] of overflowing) published.push({ payload: headerOnly(entityName, [], 'GAP_OVERFLOW'), channels: this.memberChannels(object) });
    published.forEach(({ payload, channels }, index) => {
      Object.assign(payload.ChangeEventHeader as object, header, { sequenceNumber: index + 1 });
      this.append(payload, channels);
    });
  }

  /**
   * The member channels of the object and, for UPDATE and DELETE, the enriched fields each adds
   * ("Enrich Change Events with Extra Fields": not on CREATE and UNDELETE, which carry every
   * populated field already; an empty enriched field is left out for CometD subscribers; a changed
   * one is in the event as a changed field, not as an enriched one).
   */
  private memberChannels(object: ObjectDef, change?: RecordChange): Record<string, Record<string, unknown>> | undefined {
    const routes = this.channels.routes(object);
    if (routes.length === 0) return undefined;
    const enrich = change !== undefined && (change.changeType === 'UPDATE' || change.changeType === 'DELETE');
    return Object.fromEntries(routes.map((route) => [route.path, enrich ? enrichment(change, route.enrichedFields) : {}]));
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

  /** The event as `channel` delivers it: with that channel's enriched fields, if it has any. */
  toMessage(channel: string, event: StoredChangeEvent): ChangeEventMessage {
    const extra = event.channels?.[channel];
    const payload = extra && Object.keys(extra).length > 0 ? withEnrichment(event.payload, extra) : event.payload;
    return { channel, data: { schema: event.schema, payload, event: { replayId: event.replayId } } };
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
    ({ lastReplayId: this.lastReplayId, prunedThrough: this.prunedThrough } = snapshot);
    // State files written before commit numbers were bigints hold a plain number.
    this.lastCommitNumber = BigInt(snapshot.lastCommitNumber);
    this.events = [...snapshot.events];
    this.prune();
  }

  clear(): void {
    this.events = [];
    this.lastReplayId = 0;
    this.lastCommitNumber = this.firstCommitNumber - 1n;
    this.prunedThrough = 0;
  }

  private append(payload: Record<string, unknown>, channels: StoredChangeEvent['channels']): void {
    this.prune();
    const header = payload.ChangeEventHeader as { entityName: string };
    const event: StoredChangeEvent = {
      replayId: ++this.lastReplayId,
      entityName: header.entityName,
      publishedAt: this.clock.now(),
      schema: schemaId(header.entityName),
      payload,
      ...(channels ? { channels } : {}),
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

  /**
   * The CometD shape (Change Data Capture Developer Guide, "Change Event Body Fields", JSON/CometD):
   * CREATE and UNDELETE carry the non-empty fields only; UPDATE the changed fields, a field set to
   * null as a null value, and LastModifiedDate; DELETE no fields.
   */
  private changePayload(change: RecordChange): Record<string, unknown> {
    const payload = headerOnly(change.object.name, [change.id], change.changeType);
    const def = change.object;
    if (change.changeType === 'DELETE') return payload;
    if (change.changeType === 'UPDATE') {
      const header = payload.ChangeEventHeader as { changedFields: string[] };
      for (const name of change.changedFields) {
        const field = def.field(name) as FieldDef;
        setEventField(payload, field, eventValue(field, change.record[name]));
        header.changedFields.push(field.compound ? `${field.compound.field}.${field.compound.component}` : field.name);
      }
      return payload;
    }
    for (const field of def.fields) {
      if (field.computed || ['Id', 'IsDeleted', 'SystemModstamp'].includes(field.name)) continue;
      const value = eventValue(field, change.record[field.name]);
      if (value !== null) setEventField(payload, field, value);
    }
    return payload;
  }
}

/** CometD headers have no nulledFields and diffFields: those are Pub/Sub API only ("Change Event Message Structure"). */
function headerOnly(entityName: string, recordIds: string[], changeType: string): Record<string, unknown> {
  return { ChangeEventHeader: { entityName, recordIds, changeType, changedFields: [] } };
}

interface Published {
  payload: Record<string, unknown>;
  channels: StoredChangeEvent['channels'];
}

/** What makes two changes "the same change": object, type, changed fields, body and enriched values, whatever the order of keys. */
function changeSignature(payload: Record<string, unknown>, channels: StoredChangeEvent['channels']): string {
  const { ChangeEventHeader: header, ...body } = payload as { ChangeEventHeader: { entityName: string; changeType: string; changedFields: string[] } };
  return JSON.stringify([header.entityName, header.changeType, [...header.changedFields].sort(), sortedKeys(body), sortedKeys(channels ?? {})]);
}

/**
 * The enriched fields' values at the change, in the event's shape: non-empty ones only, and none
 * that changed (those are in the body already). A compound is named whole and sent as its non-empty
 * components, nested as in the body (`MailingAddress: {City, …}`).
 */
function enrichment(change: RecordChange, fields: readonly FieldDef[]): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const field of fields) {
    const components = change.object.fields.filter((c) => c.compound?.field === field.name);
    if (components.length === 0) {
      const value = eventValue(field, change.record[field.name]);
      if (value !== null && !change.changedFields.includes(field.name)) body[field.name] = value;
      continue;
    }
    const nested: Record<string, unknown> = {};
    for (const component of components) {
      const value = eventValue(component, change.record[component.name]);
      if (value !== null && !change.changedFields.includes(component.name)) nested[(component.compound as { component: string }).component] = value;
    }
    if (Object.keys(nested).length > 0) body[field.name] = nested;
  }
  return body;
}

/** The body with enriched fields added; a compound's enriched components join the changed ones. */
function withEnrichment(payload: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...payload };
  for (const [name, value] of Object.entries(extra)) {
    const present = out[name];
    out[name] = present !== null && typeof present === 'object' && typeof value === 'object' ? { ...(value as object), ...(present as object) } : value;
  }
  return out;
}

function sortedKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, sortedKeys(v)]));
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

function schemaId(entityName: string): string {
  return createHash('sha256').update(changeEventName(entityName)).digest('base64url').slice(0, 22);
}
