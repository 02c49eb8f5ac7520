import { ApiError } from './errors.js';
import { makeId } from './ids.js';
import { changeEventName, type FieldDef, type ObjectDef, type Schema } from './schema.js';

/**
 * Change Data Capture channels beyond the built-in ones: custom data channels (`/data/Name__chn`,
 * Tooling API PlatformEventChannel) and their members (PlatformEventChannelMember), each member one
 * entity of the channel with its enriched fields. Change Data Capture Developer Guide: "Compose
 * Streams of Change Data Capture Notifications with Custom Channels" and "Enrich Change Events with
 * Extra Fields".
 */

/** The standard multi-entity channel; a member on it may enrich `/data/ChangeEvents`. */
export const STANDARD_CHANNEL = 'ChangeEvents';
/** "You can add up to 10 enriched fields in each channel member." */
export const MAX_ENRICHED_FIELDS = 10;
/** PlatformEventChannelMember.enrichedFields exists from API version 51.0 on. */
export const ENRICHMENT_SINCE = 51;

const CHANNEL_PREFIX = '0YL';
const MEMBER_PREFIX = '0v8';
const CUSTOM_CHANNEL = /^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*[A-Za-z0-9]__chn$/;
const DEVELOPER_NAME = /^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*[A-Za-z0-9]$|^[A-Za-z]$/;

/** A channel as configured in the emulator's options or admin: the Metadata shape, members inline. */
export interface ChannelConfig {
  /** `BanyanContacts__chn`. */
  fullName: string;
  label?: string;
  members?: ChannelMemberConfig[];
}

export interface ChannelMemberConfig {
  /** The change event name of the entity, `ContactChangeEvent` (`Invoice__ChangeEvent` for `Invoice__c`). */
  selectedEntity: string;
  /** Field API names; a compound field (`MailingAddress`, `Name`) is named whole, never by component. */
  enrichedFields?: string[];
}

export interface EventChannel {
  id: string;
  fullName: string;
  label: string;
  channelType: 'data';
}

export interface ChannelMember {
  id: string;
  developerName: string;
  /** `ChangeEvents` or a custom channel's full name. */
  eventChannel: string;
  selectedEntity: string;
  /** Canonical field names, in the order given. */
  enrichedFields: string[];
}

/** Where a change of one object is published beyond its own and the standard channel, and what it carries there. */
export interface ChannelRoute {
  /** The subscription path, `/data/BanyanContacts__chn`. */
  path: string;
  enrichedFields: FieldDef[];
}

export interface ChannelsSnapshot {
  counter: number;
  channels: EventChannel[];
  members: ChannelMember[];
}

const integrity = (message: string, fields: string[] = []) => new ApiError(400, 'FIELD_INTEGRITY_EXCEPTION', message, fields);

export class EventChannels {
  private channels = new Map<string, EventChannel>();
  private members = new Map<string, ChannelMember>();
  private counter = 0;

  constructor(private readonly schema: Schema) {}

  /** PlatformEventChannel: a custom data channel, `Name__chn`, without members yet. */
  createChannel(input: { fullName: unknown; label: unknown; channelType: unknown }): EventChannel {
    const { fullName, label, channelType } = input;
    if (typeof fullName !== 'string' || !CUSTOM_CHANNEL.test(fullName)) {
      throw integrity(`FullName: a custom channel is named like MyChannel__chn (letters, digits and single underscores), got ${JSON.stringify(fullName)}`, ['FullName']);
    }
    if (channelType !== 'data') {
      // Platform event channels (channelType event) carry platform events, which the emulator does not serve.
      throw integrity(`channelType: ${JSON.stringify(channelType)} is not a Change Data Capture channel type; use data`, ['channelType']);
    }
    if (typeof label !== 'string' || label.trim() === '') throw new ApiError(400, 'REQUIRED_FIELD_MISSING', 'Required fields are missing: [label]', ['label']);
    if (this.channelNamed(fullName)) throw new ApiError(400, 'DUPLICATE_DEVELOPER_NAME', `A channel named ${fullName} already exists`, ['FullName']);
    const channel: EventChannel = { id: makeId(CHANNEL_PREFIX, ++this.counter), fullName, label, channelType: 'data' };
    this.channels.set(channel.id, channel);
    return channel;
  }

  /** PlatformEventChannelMember: one entity on a channel, with the fields every UPDATE and DELETE event of it carries there. */
  createMember(input: { fullName?: unknown; eventChannel: unknown; selectedEntity: unknown; enrichedFields?: unknown }): ChannelMember {
    const { eventChannel, selectedEntity } = input;
    if (typeof eventChannel !== 'string' || (eventChannel !== STANDARD_CHANNEL && !this.channelNamed(eventChannel))) {
      throw integrity(`eventChannel: no channel named ${JSON.stringify(eventChannel)}; create the PlatformEventChannel first, or use ChangeEvents`, ['eventChannel']);
    }
    const object = typeof selectedEntity === 'string' ? this.schema.objects.find((o) => changeEventName(o.name) === selectedEntity) : undefined;
    if (!object) {
      throw integrity(`selectedEntity: ${JSON.stringify(selectedEntity)} is not the change event of an object in this org (for Contact: ContactChangeEvent)`, ['selectedEntity']);
    }
    const enrichedFields = this.enrichedFieldsOf(object, input.enrichedFields);
    const developerName = input.fullName === undefined ? `${eventChannel.replace('__chn', '_chn')}_${selectedEntity}` : input.fullName;
    if (typeof developerName !== 'string' || !DEVELOPER_NAME.test(developerName)) {
      throw integrity(`FullName: ${JSON.stringify(developerName)} is not a valid developer name (letters, digits and single underscores)`, ['FullName']);
    }
    for (const member of this.members.values()) {
      if (member.developerName === developerName || (member.eventChannel === eventChannel && member.selectedEntity === selectedEntity)) {
        throw new ApiError(400, 'DUPLICATE_DEVELOPER_NAME', `${selectedEntity} is already a member of ${eventChannel} (${member.developerName}); update that member instead`, ['FullName']);
      }
    }
    const member: ChannelMember = { id: makeId(MEMBER_PREFIX, ++this.counter), developerName, eventChannel, selectedEntity: selectedEntity as string, enrichedFields };
    this.members.set(member.id, member);
    return member;
  }

  /** Checks enrichedFields (`[{ name }]` in Metadata, plain names in the emulator's config) and returns canonical names. */
  private enrichedFieldsOf(object: ObjectDef, raw: unknown): string[] {
    if (raw === undefined || raw === null) return [];
    if (!Array.isArray(raw)) throw integrity('enrichedFields must be a list of { "name": "<field>" }', ['enrichedFields']);
    if (raw.length > MAX_ENRICHED_FIELDS) {
      throw integrity(`enrichedFields: ${raw.length} fields, at most ${MAX_ENRICHED_FIELDS} per channel member`, ['enrichedFields']);
    }
    const names: string[] = [];
    for (const entry of raw) {
      const name = typeof entry === 'string' ? entry : (entry as { name?: unknown } | null)?.name;
      if (typeof name !== 'string') throw integrity('enrichedFields must be a list of { "name": "<field>" }', ['enrichedFields']);
      const field = object.field(name);
      const problem = !field ? `no field ${name} on ${object.name} (a relationship is named by its own field, e.g. AccountId, never traversed)`
        : field.compound ? `${field.name} is a component of the compound field ${field.compound.field}; enrich the compound field whole`
          : field.type === 'textarea' && field.length > 255 ? `${field.name} is a long text area; only TextArea (255) is supported`
            : undefined;
      if (problem) throw integrity(`enrichedFields: ${problem}`, ['enrichedFields']);
      if (!names.includes(field!.name)) names.push(field!.name);
    }
    return names;
  }

  /** The emulator's own config: a channel and its members in one go, as deploying the metadata would. */
  define(config: ChannelConfig): EventChannel {
    const defaultLabel = typeof config.fullName === 'string' ? config.fullName.replace(/__chn$/, '') : undefined;
    if (config.members !== undefined && !Array.isArray(config.members)) throw integrity('members must be a list of { selectedEntity, enrichedFields }', ['members']);
    // Members are checked before the channel is made, so a bad config makes nothing.
    for (const member of config.members ?? []) {
      const object = this.schema.objects.find((o) => changeEventName(o.name) === member?.selectedEntity);
      if (!object) throw integrity(`selectedEntity: ${JSON.stringify(member?.selectedEntity)} is not the change event of an object in this org (for Contact: ContactChangeEvent)`, ['selectedEntity']);
      this.enrichedFieldsOf(object, member.enrichedFields);
    }
    const channel = this.createChannel({ fullName: config.fullName, label: config.label ?? defaultLabel, channelType: 'data' });
    for (const member of config.members ?? []) {
      this.createMember({ eventChannel: channel.fullName, selectedEntity: member.selectedEntity, enrichedFields: member.enrichedFields ?? [] });
    }
    return channel;
  }

  channel(id: string): EventChannel | undefined {
    return this.channels.get(id);
  }

  member(id: string): ChannelMember | undefined {
    return this.members.get(id);
  }

  channelNamed(fullName: string): EventChannel | undefined {
    return [...this.channels.values()].find((c) => c.fullName === fullName);
  }

  /** Deleting a channel deletes its members with it. */
  deleteChannel(id: string): boolean {
    const channel = this.channels.get(id);
    if (!channel) return false;
    for (const member of [...this.members.values()]) if (member.eventChannel === channel.fullName) this.members.delete(member.id);
    return this.channels.delete(id);
  }

  deleteMember(id: string): boolean {
    return this.members.delete(id);
  }

  /** Whether `/data/…` names a custom channel of this org. */
  isCustomPath(path: string): boolean {
    return path.startsWith('/data/') && this.channelNamed(path.slice('/data/'.length)) !== undefined;
  }

  /** The channels a change of `object` is published to beyond its single-entity channel, with their enriched fields. */
  routes(object: ObjectDef): ChannelRoute[] {
    const entity = changeEventName(object.name);
    const routes: ChannelRoute[] = [];
    for (const member of this.members.values()) {
      if (member.selectedEntity !== entity) continue;
      const enrichedFields = member.enrichedFields.map((name) => object.field(name)).filter((f): f is FieldDef => f !== undefined);
      routes.push({ path: `/data/${member.eventChannel}`, enrichedFields });
    }
    return routes;
  }

  list(): { channels: EventChannel[]; members: ChannelMember[] } {
    return { channels: [...this.channels.values()], members: [...this.members.values()] };
  }

  snapshot(): ChannelsSnapshot {
    return { counter: this.counter, ...this.list() };
  }

  restore(snapshot: ChannelsSnapshot): void {
    this.clear();
    this.counter = snapshot.counter;
    for (const channel of snapshot.channels) this.channels.set(channel.id, { ...channel });
    for (const member of snapshot.members) this.members.set(member.id, { ...member, enrichedFields: [...member.enrichedFields] });
  }

  clear(): void {
    this.channels.clear();
    this.members.clear();
    this.counter = 0;
  }
}
