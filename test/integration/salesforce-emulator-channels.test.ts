import type { Connection } from 'jsforce';
import { StreamingExtension } from 'jsforce/api/streaming';
import { afterEach, describe, expect, it } from 'vitest';
import { loginToEmulator, waitFor as waitUntil } from '../helpers';
import { type Emulator, type EmulatorOptions, startEmulator } from '../../tools/salesforce-emulator/index.js';

/**
 * Custom Change Data Capture channels with enriched fields, as the Change Data Capture Developer Guide
 * describes them ("Compose Streams of Change Data Capture Notifications with Custom Channels", "Enrich
 * Change Events with Extra Fields", "Example: Add Event Enrichment Fields with Tooling API", "Example:
 * Delivered Enriched Event Messages"), driven through jsforce and plain HTTP as a client would.
 */

interface ChangeEvent {
  schema: string;
  payload: { ChangeEventHeader: { entityName: string; changeType: string; changedFields: string[]; recordIds: string[] } } & Record<string, unknown>;
  event: { replayId: number };
}

interface StreamingClient {
  subscribe(channel: string, listener: (message: ChangeEvent) => void): PromiseLike<unknown>;
  disconnect(): void;
}

let emulator: Emulator;
const streamingClients: StreamingClient[] = [];

async function connect(opts: EmulatorOptions = {}): Promise<Connection> {
  emulator ??= await startEmulator({ cometd: { longPollTimeoutMs: 1000 }, ...opts });
  return loginToEmulator(emulator);
}

afterEach(async () => {
  for (const client of streamingClients.splice(0)) client.disconnect();
  await emulator?.close();
  emulator = undefined as unknown as Emulator;
});

async function subscribe(conn: Connection, channel: string, replayId: number) {
  const events: ChangeEvent[] = [];
  const client = conn.streaming.createClient([new StreamingExtension.Replay(channel, replayId)]) as unknown as StreamingClient;
  streamingClients.push(client);
  await client.subscribe(channel, (message) => events.push(message));
  const waitFor = (count: number): Promise<ChangeEvent[]> =>
    waitUntil(() => events.length >= count && events, () => `${count} events on ${channel} (got ${events.length})`);
  return { events, waitFor };
}

const body = (event: ChangeEvent | undefined): Record<string, unknown> => {
  const { ChangeEventHeader: _header, ...fields } = event?.payload ?? {};
  return fields;
};
const header = (event: ChangeEvent | undefined) => event?.payload.ChangeEventHeader;

/** A Tooling API call as raw HTTP: status and parsed body. */
async function tooling(conn: Connection, method: string, path: string, payload?: unknown, version = '62.0') {
  const response = await fetch(`${emulator.url}/services/data/v${version}/tooling/sobjects/${path}`, {
    method,
    headers: { 'content-type': 'application/json', Authorization: `Bearer ${conn.accessToken}` },
    ...(payload !== undefined ? { body: JSON.stringify(payload) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

/** The documented two calls: the channel, then its member with enriched fields. */
async function createChannel(conn: Connection, name: string, selectedEntity: string, enrichedFields: string[]): Promise<void> {
  const channel = await tooling(conn, 'POST', 'PlatformEventChannel', { FullName: `${name}__chn`, Metadata: { channelType: 'data', label: `Channel ${name}` } });
  expect(channel).toEqual({ status: 201, body: { id: expect.stringMatching(/^0YL\w{15}$/), success: true, errors: [], warnings: [], infos: [] } });
  const member = await tooling(conn, 'POST', 'PlatformEventChannelMember', {
    FullName: `${name}_chn_${selectedEntity}`,
    Metadata: { eventChannel: `${name}__chn`, selectedEntity, enrichedFields: enrichedFields.map((f) => ({ name: f })) },
  });
  expect(member).toMatchObject({ status: 201, body: { id: expect.stringMatching(/^0v8\w{15}$/), success: true } });
}

describe('Salesforce emulator: custom channels and enriched fields', () => {
  it('delivers a member entity’s UPDATE with the enriched field present and not in changedFields; the single-entity channel is unchanged', async () => {
    const conn = await connect();
    await createChannel(conn, 'SalesEvents', 'ContactChangeEvent', ['Banyan_Id__c']);
    const { id } = await conn.sobject('Contact').create({ LastName: 'Hopper', Email: 'grace@example.com', Banyan_Id__c: 'user-1' }) as { id: string };
    const custom = await subscribe(conn, '/data/SalesEvents__chn', -1);
    const single = await subscribe(conn, '/data/ContactChangeEvent', -1);

    await conn.sobject('Contact').update({ Id: id, Email: 'grace@navy.example' });

    const [enriched] = await custom.waitFor(1);
    expect(enriched?.payload).toEqual({
      ChangeEventHeader: expect.objectContaining({ entityName: 'Contact', changeType: 'UPDATE', recordIds: [id], changedFields: ['Email', 'LastModifiedDate'] }),
      Email: 'grace@navy.example', LastModifiedDate: expect.stringMatching(/Z$/), Banyan_Id__c: 'user-1',
    });
    const [plain] = await single.waitFor(1);
    expect(body(plain)).toEqual({ Email: 'grace@navy.example', LastModifiedDate: expect.stringMatching(/Z$/) });
    expect(plain?.event.replayId).toBe(enriched?.event.replayId);
  });

  it('carries enriched fields on DELETE, leaves empty ones out, and names an enriched field updated to null as a changed field', async () => {
    const conn = await connect();
    await createChannel(conn, 'Ops', 'ContactChangeEvent', ['Banyan_Id__c', 'Phone']);
    const { id: tagged } = await conn.sobject('Contact').create({ LastName: 'A', Banyan_Id__c: 'user-a', Phone: '+1 1' }) as { id: string };
    const { id: untagged } = await conn.sobject('Contact').create({ LastName: 'B' }) as { id: string };
    const { waitFor } = await subscribe(conn, '/data/Ops__chn', -1);

    await conn.sobject('Contact').update({ Id: untagged, Email: 'b@example.com' });
    await conn.sobject('Contact').update({ Id: tagged, Phone: null });
    await conn.sobject('Contact').destroy(tagged);

    const [noValues, nulled, deleted] = await waitFor(3);
    expect(body(noValues)).toEqual({ Email: 'b@example.com', LastModifiedDate: expect.any(String) });
    expect(header(nulled)?.changedFields).toEqual(['Phone', 'LastModifiedDate']);
    expect(body(nulled)).toEqual({ Phone: null, LastModifiedDate: expect.any(String), Banyan_Id__c: 'user-a' });
    // "A change event message for a delete operation includes the non-empty enriched fields … but no other record fields."
    expect(deleted?.payload).toEqual({ ChangeEventHeader: expect.objectContaining({ changeType: 'DELETE', changedFields: [] }), Banyan_Id__c: 'user-a' });
  });

  it('sends CREATE and UNDELETE as they are, and only the member entities’ events', async () => {
    const conn = await connect();
    await createChannel(conn, 'People', 'ContactChangeEvent', ['Banyan_Id__c']);
    const { waitFor, events } = await subscribe(conn, '/data/People__chn', -1);
    await conn.sobject('Account').create({ Name: 'Not a member' });
    const { id } = await conn.sobject('Contact').create({ LastName: 'Turing', Banyan_Id__c: 'user-3' }) as { id: string };
    await conn.sobject('Contact').destroy(id);
    emulator.admin.undelete('Contact', id);

    await waitFor(3);
    // The Account event was published before the Contact ones: had the channel carried it, it would be here first.
    expect(events.map((e) => [header(e)?.entityName, header(e)?.changeType])).toEqual([['Contact', 'CREATE'], ['Contact', 'DELETE'], ['Contact', 'UNDELETE']]);
    expect(body(events[0])).toMatchObject({ Name: { LastName: 'Turing' }, Banyan_Id__c: 'user-3' });
    expect(body(events[2])).toMatchObject({ Name: { LastName: 'Turing' }, Banyan_Id__c: 'user-3' });
  });

  it('sends an enriched compound field as its non-empty components, beside the changed one', async () => {
    const conn = await connect();
    await createChannel(conn, 'Addresses', 'ContactChangeEvent', ['MailingAddress', 'Name']);
    const { id } = await conn.sobject('Contact').create({ FirstName: 'Emmy', LastName: 'Noether', MailingStreet: 'Unter den Linden 6', MailingCity: 'Berlin', MailingCountry: 'Germany' }) as { id: string };
    const { waitFor } = await subscribe(conn, '/data/Addresses__chn', -1);
    await conn.sobject('Contact').update({ Id: id, MailingCity: 'Göttingen' });
    const [event] = await waitFor(1);
    expect(header(event)?.changedFields).toEqual(['MailingAddress.City', 'LastModifiedDate']);
    expect(body(event)).toEqual({
      MailingAddress: { Street: 'Unter den Linden 6', City: 'Göttingen', Country: 'Germany' },
      Name: { FirstName: 'Emmy', LastName: 'Noether' },
      LastModifiedDate: expect.any(String),
    });
  });

  it('keeps the values current at each change, on replay too; a member made later does not carry older events', async () => {
    const conn = await connect();
    const { id } = await conn.sobject('Contact').create({ LastName: 'Kay', Banyan_Id__c: 'old-id' }) as { id: string };
    await conn.sobject('Contact').update({ Id: id, Email: 'before@example.com' });
    await createChannel(conn, 'History', 'ContactChangeEvent', ['Banyan_Id__c']);
    await conn.sobject('Contact').update({ Id: id, Email: 'kay@example.com' });
    await conn.sobject('Contact').update({ Id: id, Banyan_Id__c: 'new-id' });
    await conn.sobject('Contact').update({ Id: id, Phone: '+1 2' });

    const { waitFor, events } = await subscribe(conn, '/data/History__chn', -2);
    await waitFor(3);
    expect(events.map((e) => [header(e)?.changedFields, e.payload.Banyan_Id__c])).toEqual([
      [['Email', 'LastModifiedDate'], 'old-id'],
      [['Banyan_Id__c', 'LastModifiedDate'], 'new-id'],
      [['Phone', 'LastModifiedDate'], 'new-id'],
    ]);
    const all = await subscribe(conn, '/data/ContactChangeEvent', -2);
    await all.waitFor(5);
    expect(all.events).toHaveLength(5);
  });

  it('does not merge changes of one call whose enriched values differ', async () => {
    const conn = await connect();
    await createChannel(conn, 'Merge', 'ContactChangeEvent', ['Banyan_Id__c']);
    const created = await conn.sobject('Contact').create([{ LastName: 'A', Banyan_Id__c: 'm-1' }, { LastName: 'B', Banyan_Id__c: 'm-2' }]);
    const [a, b] = created.map((r) => r.id as string);
    const { waitFor } = await subscribe(conn, '/data/Merge__chn', -1);
    await conn.sobject('Contact').update([{ Id: a!, Phone: '1' }, { Id: b!, Phone: '1' }]);
    const events = await waitFor(2);
    expect(events.map((e) => [header(e)?.recordIds, e.payload.Banyan_Id__c])).toEqual([[[a], 'm-1'], [[b], 'm-2']]);
  });

  it('enriches the standard /data/ChangeEvents channel through a ChangeEvents member', async () => {
    const conn = await connect();
    const member = await tooling(conn, 'POST', 'PlatformEventChannelMember', {
      FullName: 'ChangeEvents_AccountChangeEvent',
      Metadata: { eventChannel: 'ChangeEvents', selectedEntity: 'AccountChangeEvent', enrichedFields: [{ name: 'Banyan_Id__c' }, { name: 'Industry' }] },
    });
    expect(member.status).toBe(201);
    const { id } = await conn.sobject('Account').create({ Name: 'Acme', Industry: 'Energy', Banyan_Id__c: 'acct-1' }) as { id: string };
    const all = await subscribe(conn, '/data/ChangeEvents', -1);
    const single = await subscribe(conn, '/data/AccountChangeEvent', -1);
    await conn.sobject('Account').update({ Id: id, Phone: '+1 3' });
    const [enriched] = await all.waitFor(1);
    expect(body(enriched)).toEqual({ Phone: '+1 3', LastModifiedDate: expect.any(String), Banyan_Id__c: 'acct-1', Industry: 'Energy' });
    const [plain] = await single.waitFor(1);
    expect(body(plain)).toEqual({ Phone: '+1 3', LastModifiedDate: expect.any(String) });
  });

  it('reads and deletes channels and members through the Tooling API', async () => {
    const conn = await connect();
    const channel = await tooling(conn, 'POST', 'PlatformEventChannel', { FullName: 'Gone__chn', Metadata: { channelType: 'data', label: 'Gone' } });
    const channelId = (channel.body as { id: string }).id;
    const member = await tooling(conn, 'POST', 'PlatformEventChannelMember', {
      FullName: 'Gone_chn_ContactChangeEvent', Metadata: { eventChannel: 'Gone__chn', selectedEntity: 'ContactChangeEvent', enrichedFields: [{ name: 'Email' }] },
    });
    const memberId = (member.body as { id: string }).id;
    expect(await tooling(conn, 'GET', `PlatformEventChannel/${channelId}`)).toEqual({
      status: 200,
      body: {
        attributes: { type: 'PlatformEventChannel', url: `/services/data/v62.0/tooling/sobjects/PlatformEventChannel/${channelId}` },
        Id: channelId, DeveloperName: 'Gone', MasterLabel: 'Gone', ChannelType: 'data', FullName: 'Gone__chn', Metadata: { channelType: 'data', label: 'Gone' },
      },
    });
    expect(await tooling(conn, 'GET', `PlatformEventChannelMember/${memberId}`)).toMatchObject({
      status: 200,
      body: { Id: memberId, DeveloperName: 'Gone_chn_ContactChangeEvent', EventChannel: channelId, SelectedEntity: 'ContactChangeEvent', Metadata: { enrichedFields: [{ name: 'Email' }], eventChannel: 'Gone__chn' } },
    });

    expect((await tooling(conn, 'DELETE', `PlatformEventChannel/${channelId}`)).status).toBe(204);
    expect((await tooling(conn, 'GET', `PlatformEventChannelMember/${memberId}`)).status).toBe(404);
    const client = conn.streaming.createClient([new StreamingExtension.Replay('/data/Gone__chn', -1)]) as unknown as StreamingClient;
    streamingClients.push(client);
    await expect(client.subscribe('/data/Gone__chn', () => undefined)).rejects.toThrow(/does not exist/);
  });

  it('refuses a subscription to a channel that does not exist', async () => {
    const conn = await connect();
    const client = conn.streaming.createClient([new StreamingExtension.Replay('/data/Nope__chn', -1)]) as unknown as StreamingClient;
    streamingClients.push(client);
    await expect(client.subscribe('/data/Nope__chn', () => undefined)).rejects.toThrow('The channel you requested to subscribe to does not exist {/data/Nope__chn}');
  });

  it('refuses invalid channels and members as a Tooling API create does', async () => {
    const conn = await connect();
    await tooling(conn, 'POST', 'PlatformEventChannel', { FullName: 'Good__chn', Metadata: { channelType: 'data', label: 'Good' } });
    const member = (Metadata: Record<string, unknown>, version?: string) =>
      tooling(conn, 'POST', 'PlatformEventChannelMember', { FullName: 'Good_chn_ContactChangeEvent', Metadata: { eventChannel: 'Good__chn', selectedEntity: 'ContactChangeEvent', ...Metadata } }, version);
    const refused = async (call: Promise<{ status: number; body: unknown }>, errorCode: string, message: RegExp) => {
      const { status, body: answer } = await call;
      expect(status).toBe(400);
      expect(answer).toEqual([expect.objectContaining({ errorCode, message: expect.stringMatching(message) })]);
    };

    await refused(member({ enrichedFields: [{ name: 'Nope__c' }] }), 'FIELD_INTEGRITY_EXCEPTION', /no field Nope__c on Contact/);
    await refused(member({ enrichedFields: [{ name: 'Account.Name' }] }), 'FIELD_INTEGRITY_EXCEPTION', /no field Account\.Name/);
    await refused(member({ enrichedFields: [{ name: 'MailingCity' }] }), 'FIELD_INTEGRITY_EXCEPTION', /component of the compound field MailingAddress/);
    await refused(member({ enrichedFields: [{ name: 'Description' }] }), 'FIELD_INTEGRITY_EXCEPTION', /long text area/);
    const eleven = ['Email', 'Phone', 'Birthdate', 'HasOptedOutOfEmail', 'Banyan_Id__c', 'AccountId', 'Name', 'MailingAddress', 'CreatedDate', 'LastModifiedDate', 'CreatedById'];
    await refused(member({ enrichedFields: eleven.map((name) => ({ name })) }), 'FIELD_INTEGRITY_EXCEPTION', /at most 10/);
    await refused(member({ enrichedFields: [{ name: 'Email' }] }, '50.0'), 'JSON_PARSER_ERROR', /enrichedFields/);
    await refused(member({ eventChannel: 'Missing__chn' }), 'FIELD_INTEGRITY_EXCEPTION', /no channel named "Missing__chn"/);
    await refused(member({ selectedEntity: 'Contact' }), 'FIELD_INTEGRITY_EXCEPTION', /selectedEntity/);
    await refused(tooling(conn, 'POST', 'PlatformEventChannel', { FullName: 'NoSuffix', Metadata: { channelType: 'data', label: 'x' } }), 'FIELD_INTEGRITY_EXCEPTION', /__chn/);
    await refused(tooling(conn, 'POST', 'PlatformEventChannel', { FullName: 'Events__chn', Metadata: { channelType: 'event', label: 'x' } }), 'FIELD_INTEGRITY_EXCEPTION', /channelType/);
    await refused(tooling(conn, 'POST', 'PlatformEventChannel', { FullName: 'Good__chn', Metadata: { channelType: 'data', label: 'again' } }), 'DUPLICATE_DEVELOPER_NAME', /Good__chn/);

    // Nothing refused was made: the one valid member can still be created, once.
    expect((await member({ enrichedFields: [{ name: 'AccountId' }, { name: 'MailingAddress' }] })).status).toBe(201);
    await refused(member({}), 'DUPLICATE_DEVELOPER_NAME', /already a member/);
  });

  it('seeds channels from its options, the demo seed and the admin endpoint, and restores them on reset', async () => {
    const conn = await connect({
      seed: 'demo',
      channels: [{ fullName: 'Configured__chn', members: [{ selectedEntity: 'AccountChangeEvent', enrichedFields: ['Banyan_Id__c'] }] }],
    });
    const admin = `${emulator.url}/__admin`;
    const posted = await fetch(`${admin}/channels`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ fullName: 'Posted__chn', label: 'Posted', members: [{ selectedEntity: 'ContactChangeEvent', enrichedFields: ['Email'] }] }),
    });
    expect(posted.status).toBe(200);
    const bad = await fetch(`${admin}/channels`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ fullName: 'Bad__chn', members: [{ selectedEntity: 'ContactChangeEvent', enrichedFields: ['MailingCity'] }] }),
    });
    expect(bad.status).toBe(400);
    const listed = await (await fetch(`${admin}/channels`)).json() as { channels: { fullName: string }[]; members: { eventChannel: string; selectedEntity: string; enrichedFields: string[] }[] };
    expect(listed.channels.map((c) => c.fullName)).toEqual(['BanyanContacts__chn', 'Configured__chn', 'Posted__chn']);
    expect(listed.members).toContainEqual(expect.objectContaining({ eventChannel: 'BanyanContacts__chn', selectedEntity: 'ContactChangeEvent', enrichedFields: ['Banyan_Id__c'] }));

    // The demo seed's channel: Ada's external id in an Email-only update.
    const [ada] = (await conn.query<{ Id: string }>("SELECT Id FROM Contact WHERE Banyan_Id__c = 'user-2001'")).records;
    const { waitFor } = await subscribe(conn, '/data/BanyanContacts__chn', -1);
    await conn.sobject('Contact').update({ Id: ada!.Id, Email: 'ada@analytical.example' });
    const [event] = await waitFor(1);
    expect(header(event)?.changedFields).toEqual(['Email', 'LastModifiedDate']);
    expect(event?.payload.Banyan_Id__c).toBe('user-2001');

    emulator.admin.reset();
    expect(emulator.admin.channels().channels.map((c) => c.fullName)).toEqual(['BanyanContacts__chn', 'Configured__chn']);
  });
});
