import { ENRICHMENT_SINCE, type ChannelMember, type EventChannel } from './channels.js';
import { ApiError, notFound } from './errors.js';
import { type EmulatorResponse, expectObject, json, parseJsonBody } from './http.js';
import { normalizeId } from './ids.js';
import type { Org } from './org.js';
import type { RestCall } from './rest.js';
import { methodNotAllowed } from './sobjects.js';

const CHANNEL = 'PlatformEventChannel';
const MEMBER = 'PlatformEventChannelMember';

/**
 * The Tooling API's `tooling/sobjects/PlatformEventChannel[/{id}]` and
 * `tooling/sobjects/PlatformEventChannelMember[/{id}]`: create with `{FullName, Metadata}` (as
 * "Example: Add Event Enrichment Fields with Tooling API" does), read and delete by id. Nothing
 * else of the Tooling API is served.
 */
export function handleTooling(org: Org, call: RestCall): EmulatorResponse {
  const [, resource, typeName, rawId, ...extra] = call.segments;
  if (resource !== 'sobjects' || (typeName !== CHANNEL && typeName !== MEMBER) || extra.length > 0) throw notFound();
  const base = `/services/data/v${call.version}/tooling/sobjects/${typeName}`;
  if (rawId === undefined) {
    if (call.method !== 'POST') throw methodNotAllowed(call.method, ['POST']);
    const body = expectObject(parseJsonBody(call.body), 'the record');
    const fullName = body.FullName;
    const metadata = expectObject(body.Metadata ?? null, 'Metadata');
    const id = typeName === CHANNEL ? createChannel(org, fullName, metadata) : createMember(org, call, fullName, metadata);
    return json(201, { id, success: true, errors: [], warnings: [], infos: [] });
  }
  const id = normalizeId(rawId);
  const channel = id && typeName === CHANNEL ? org.channels.channel(id) : undefined;
  const member = id && typeName === MEMBER ? org.channels.member(id) : undefined;
  if (!channel && !member) throw notFound();
  switch (call.method) {
    case 'GET':
      return json(200, channel ? channelRecord(channel, base) : memberRecord(org, member as ChannelMember, base));
    case 'DELETE':
      if (channel) org.channels.deleteChannel(channel.id);
      else org.channels.deleteMember((member as ChannelMember).id);
      return { status: 204 };
    default:
      throw methodNotAllowed(call.method, ['GET', 'DELETE']);
  }
}

function createChannel(org: Org, fullName: unknown, metadata: Record<string, unknown>): string {
  return org.channels.createChannel({ fullName, label: metadata.label, channelType: metadata.channelType }).id;
}

function createMember(org: Org, call: RestCall, fullName: unknown, metadata: Record<string, unknown>): string {
  if (metadata.enrichedFields !== undefined && Number(call.version) < ENRICHMENT_SINCE) {
    throw new ApiError(400, 'JSON_PARSER_ERROR', `Unrecognized field "enrichedFields": enrichment fields need API version ${ENRICHMENT_SINCE}.0 or later`);
  }
  if (metadata.filterExpression !== undefined && metadata.filterExpression !== null) {
    // Stream filtering is not emulated: refusing it is better than delivering events a filter would drop.
    throw new ApiError(400, 'FIELD_INTEGRITY_EXCEPTION', 'filterExpression: channel member filters are not supported by the Salesforce emulator', ['filterExpression']);
  }
  return org.channels.createMember({
    fullName,
    eventChannel: metadata.eventChannel,
    selectedEntity: metadata.selectedEntity,
    enrichedFields: metadata.enrichedFields,
  }).id;
}

function channelRecord(channel: EventChannel, base: string): Record<string, unknown> {
  return {
    attributes: { type: CHANNEL, url: `${base}/${channel.id}` },
    Id: channel.id,
    DeveloperName: channel.fullName.replace(/__chn$/, ''),
    MasterLabel: channel.label,
    ChannelType: channel.channelType,
    FullName: channel.fullName,
    Metadata: { channelType: channel.channelType, label: channel.label },
  };
}

function memberRecord(org: Org, member: ChannelMember, base: string): Record<string, unknown> {
  return {
    attributes: { type: MEMBER, url: `${base}/${member.id}` },
    Id: member.id,
    DeveloperName: member.developerName,
    EventChannel: org.channels.channelNamed(member.eventChannel)?.id ?? null,
    SelectedEntity: member.selectedEntity,
    FullName: member.developerName,
    Metadata: {
      enrichedFields: member.enrichedFields.map((name) => ({ name })),
      eventChannel: member.eventChannel,
      filterExpression: null,
      selectedEntity: member.selectedEntity,
    },
  };
}
