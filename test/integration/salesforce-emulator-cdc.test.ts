import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'jsforce';
import { loginToEmulator } from '../helpers';
import { StreamingExtension } from 'jsforce/api/streaming';
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, type EmulatorOptions, startEmulator } from '../../src/salesforce-emulator/index.js';

interface ChangeEventHeader {
  entityName: string;
  recordIds: string[];
  changeType: string;
  changeOrigin: string;
  transactionKey: string;
  sequenceNumber: number;
  commitTimestamp: number;
  commitNumber: number;
  commitUser: string;
  changedFields: string[];
  nulledFields: string[];
  diffFields: string[];
}

interface ChangeEvent {
  schema: string;
  payload: { ChangeEventHeader: ChangeEventHeader } & Record<string, unknown>;
  event: { replayId: number };
}

interface StreamingClient {
  subscribe(channel: string, listener: (message: ChangeEvent) => void): PromiseLike<unknown>;
  disconnect(): void;
}

let emulator: Emulator;
const streamingClients: StreamingClient[] = [];

async function connect(opts: EmulatorOptions = {}, callOptions?: { client: string }): Promise<Connection> {
  // A short long-poll keeps the suite quick; clients reconnect after each answer as they would after 110 s.
  emulator ??= await startEmulator({ cometd: { longPollTimeoutMs: 1000 }, ...opts });
  return loginToEmulator(emulator, callOptions);
}

afterEach(async () => {
  for (const client of streamingClients.splice(0)) client.disconnect();
  await emulator?.close();
  emulator = undefined as unknown as Emulator;
});

/** One streaming client per channel, as jsforce's Replay extension expects; resolves once subscribed. */
async function subscribe(conn: Connection, channel: string, replayId: number, extensions: object[] = []) {
  const events: ChangeEvent[] = [];
  const client = conn.streaming.createClient([new StreamingExtension.Replay(channel, replayId), ...extensions]) as unknown as StreamingClient;
  streamingClients.push(client);
  await client.subscribe(channel, (message) => events.push(message));
  const waitFor = async (count: number, timeoutMs = 5000): Promise<ChangeEvent[]> => {
    const deadline = Date.now() + timeoutMs;
    while (events.length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} events on ${channel}, got ${events.length}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return events;
  };
  return { events, waitFor };
}

const header = (event: ChangeEvent | undefined) => event?.payload.ChangeEventHeader;

describe('Salesforce emulator: Change Data Capture over CometD', () => {
  it('replays retained events from -2 with CREATE, UPDATE and DELETE payloads as documented', async () => {
    const conn = await connect();
    const { id } = await conn.sobject('Contact').create({
      FirstName: 'Ada', LastName: 'Lovelace', Email: 'ada@example.com', MailingStreet: '1 Main St', MailingCity: 'London',
    }) as { id: string };
    await conn.sobject('Contact').update({ Id: id, Email: null, MailingCity: 'Paris', Phone: '+33 1' });
    await conn.sobject('Contact').destroy(id);

    const { waitFor } = await subscribe(conn, '/data/ContactChangeEvent', -2);
    const [created, updated, deleted] = await waitFor(3);

    expect(created?.event.replayId).toBeLessThan(updated?.event.replayId as number);
    expect(updated?.event.replayId).toBeLessThan(deleted?.event.replayId as number);
    expect(created?.schema).toMatch(/^[\w-]{22}$/);
    expect(header(created)).toMatchObject({
      entityName: 'Contact', recordIds: [id], changeType: 'CREATE', changeOrigin: 'com/salesforce/api/rest/62.0',
      sequenceNumber: 1, commitUser: expect.stringMatching(/^005/), changedFields: [], nulledFields: [], diffFields: [],
    });
    expect(created?.payload).toMatchObject({
      Name: { Salutation: null, FirstName: 'Ada', LastName: 'Lovelace' },
      Email: 'ada@example.com',
      MailingAddress: { Street: '1 Main St', City: 'London', State: null, PostalCode: null, Country: null },
      CreatedDate: expect.stringMatching(/Z$/),
    });
    expect(created?.payload).not.toHaveProperty('Id');

    const { ChangeEventHeader: updateHeader, ...updateFields } = updated?.payload ?? {};
    expect(updateHeader).toMatchObject({ changeType: 'UPDATE', recordIds: [id] });
    expect(updateHeader?.changedFields.sort()).toEqual(['Email', 'LastModifiedDate', 'MailingAddress.City', 'Phone']);
    expect(updateHeader?.nulledFields).toEqual(['Email']);
    expect(updateFields).toEqual({ Email: null, MailingAddress: { City: 'Paris' }, Phone: '+33 1', LastModifiedDate: expect.stringMatching(/Z$/) });

    expect(deleted?.payload).toEqual({ ChangeEventHeader: expect.objectContaining({ changeType: 'DELETE', recordIds: [id] }) });
  });

  it('replays only the events after a stored replayId, then delivers live ones', async () => {
    const conn = await connect();
    for (const name of ['One', 'Two', 'Three']) await conn.sobject('Account').create({ Name: name });
    const history = await subscribe(conn, '/data/AccountChangeEvent', -2);
    const all = await history.waitFor(3);
    const stored = all[0]?.event.replayId as number;

    const resumed = await subscribe(conn, '/data/AccountChangeEvent', stored);
    const replayed = await resumed.waitFor(2);
    expect(replayed.map((e) => e.payload.Name)).toEqual(['Two', 'Three']);

    const live = await subscribe(conn, '/data/AccountChangeEvent', -1);
    await conn.sobject('Account').create({ Name: 'Four' });
    const [fresh] = await live.waitFor(1);
    expect(fresh?.payload.Name).toBe('Four');
    expect(fresh?.event.replayId).toBeGreaterThan(all[2]?.event.replayId as number);
    await resumed.waitFor(3);
    expect(live.events).toHaveLength(1);
  });

  it('reports the calling client in changeOrigin, and one transaction per collections call', async () => {
    const tagged = await connect({}, { client: 'banyan-sink' });
    const plain = await connect();
    const { waitFor } = await subscribe(plain, '/data/ChangeEvents', -1);
    await tagged.sobject('Contact').upsert([{ Banyan_Id__c: 'u-1', LastName: 'A' }, { Banyan_Id__c: 'u-2', LastName: 'B' }], 'Banyan_Id__c');
    await plain.sobject('Account').create({ Name: 'Untagged' });
    const [first, second, third] = await waitFor(3);
    expect(header(first)?.changeOrigin).toBe('com/salesforce/api/rest/62.0;client=banyan-sink');
    expect(header(second)?.changeOrigin).toBe('com/salesforce/api/rest/62.0;client=banyan-sink');
    expect(header(first)?.transactionKey).toBe(header(second)?.transactionKey);
    expect([header(first)?.sequenceNumber, header(second)?.sequenceNumber]).toEqual([1, 2]);
    expect(header(third)).toMatchObject({ entityName: 'Account', changeOrigin: 'com/salesforce/api/rest/62.0', sequenceNumber: 1 });
    expect(header(third)?.transactionKey).not.toBe(header(first)?.transactionKey);
  });

  it('sends 403::Unknown client to a forgotten client, which handshakes again and resumes after its last event', async () => {
    const conn = await connect();
    const handshakes: unknown[] = [];
    const spy = { incoming: (message: { channel: string }, callback: (m: unknown) => void) => {
      if (message.channel === '/meta/handshake') handshakes.push(message);
      callback(message);
    } };
    const { waitFor, events } = await subscribe(conn, '/data/ContactChangeEvent', -1, [spy]);
    await conn.sobject('Contact').create({ LastName: 'Before' });
    await waitFor(1);
    expect(handshakes).toHaveLength(1);

    emulator.admin.expireCometdClients();
    await conn.sobject('Contact').create({ LastName: 'After' });
    await waitFor(2);
    expect(handshakes.length).toBeGreaterThanOrEqual(2);
    expect(events.map((e) => (e.payload.Name as { LastName: string }).LastName)).toEqual(['Before', 'After']);
  });

  it('publishes GAP events for chosen changes, header and record ids only', async () => {
    const conn = await connect();
    const created = await conn.sobject('Contact').create([{ LastName: 'A' }, { LastName: 'B' }]);
    const ids = created.map((r) => r.id as string);
    const { waitFor } = await subscribe(conn, '/data/ContactChangeEvent', -1);
    emulator.admin.gapNextChanges(2);
    await conn.sobject('Contact').update(ids.map((Id) => ({ Id, Phone: '1' })));
    await conn.sobject('Contact').update({ Id: ids[0] as string, Phone: '2' });
    const [gapA, gapB, normal] = await waitFor(3);
    expect(gapA?.payload).toEqual({ ChangeEventHeader: expect.objectContaining({ changeType: 'GAP_UPDATE', recordIds: [ids[0]], changedFields: [], nulledFields: [] }) });
    expect(header(gapB)).toMatchObject({ changeType: 'GAP_UPDATE', recordIds: [ids[1]] });
    expect(normal?.payload).toMatchObject({ ChangeEventHeader: { changeType: 'UPDATE' }, Phone: '2' });
  });

  it('folds chosen changes into one GAP_OVERFLOW event per object and transaction', async () => {
    const conn = await connect();
    const { waitFor } = await subscribe(conn, '/data/ChangeEvents', -1);
    emulator.admin.overflowNextChanges(3);
    const records = Array.from({ length: 4 }, (_, i) => ({ Banyan_Id__c: `o-${i}`, LastName: `O${i}` }));
    await conn.sobject('Contact').upsert(records, 'Banyan_Id__c');
    const [first, second] = await waitFor(2);
    expect(header(first)).toMatchObject({ changeType: 'CREATE', sequenceNumber: 1 });
    expect(first?.payload.Name).toMatchObject({ LastName: 'O3' });
    expect(second?.payload).toEqual({ ChangeEventHeader: expect.objectContaining({ entityName: 'Contact', changeType: 'GAP_OVERFLOW', recordIds: [], sequenceNumber: 2 }) });
  });

  it('rejects a replayId that fell out of the 72-hour retention, while -2 replays what is left', async () => {
    const conn = await connect();
    await conn.sobject('Account').create({ Name: 'Old' });
    const history = await subscribe(conn, '/data/AccountChangeEvent', -2);
    const [old] = await history.waitFor(1);
    emulator.admin.advanceClock(72 * 60 * 60 * 1000 + 1);
    await conn.sobject('Account').create({ Name: 'New' });

    const replayId = old?.event.replayId as number;
    await expect(subscribe(conn, '/data/AccountChangeEvent', replayId - 1)).rejects.toMatchObject({
      message: expect.stringContaining(`The replayId {${replayId - 1}} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.`),
    });
    const retained = await subscribe(conn, '/data/AccountChangeEvent', -2);
    const [onlyNew] = await retained.waitFor(1);
    expect(onlyNew?.payload.Name).toBe('New');
  });

  it('holds /meta/connect for the long-poll timeout and advises a handshake once the client is forgotten', async () => {
    const conn = await connect();
    const bayeux = async (message: Record<string, unknown>) => {
      const response = await fetch(`${emulator.url}/cometd/62.0`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', Authorization: `OAuth ${conn.accessToken}` },
        body: JSON.stringify([message]),
      });
      return (await response.json()) as Record<string, unknown>[];
    };
    const [handshake] = await bayeux({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: '1' });
    expect(handshake).toMatchObject({
      successful: true, supportedConnectionTypes: ['long-polling'], ext: { replay: true },
      advice: { reconnect: 'retry', interval: 0, timeout: 1000 },
    });
    const clientId = handshake?.clientId as string;
    const connectMessage = { channel: '/meta/connect', clientId, connectionType: 'long-polling' };
    expect(await bayeux({ ...connectMessage, id: '2' })).toEqual([expect.objectContaining({ id: '2', successful: true })]);
    const started = Date.now();
    expect(await bayeux({ ...connectMessage, id: '3' })).toEqual([expect.objectContaining({ id: '3', successful: true })]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);

    emulator.admin.expireCometdClients();
    expect(await bayeux({ ...connectMessage, id: '4' })).toEqual([{
      channel: '/meta/connect', id: '4', clientId, successful: false, error: '403::Unknown client', advice: { reconnect: 'handshake', interval: 0 },
    }]);
  });

  it('publishes UNDELETE with the whole record when a deleted record is restored', async () => {
    const conn = await connect();
    const { id } = await conn.sobject('Account').create({ Name: 'Phoenix', BillingCity: 'Oslo' }) as { id: string };
    await conn.sobject('Account').destroy(id);
    const { waitFor } = await subscribe(conn, '/data/AccountChangeEvent', -1);
    emulator.admin.undelete('Account', id);
    const [restored] = await waitFor(1);
    expect(restored?.payload).toMatchObject({
      ChangeEventHeader: { changeType: 'UNDELETE', recordIds: [id] },
      Name: 'Phoenix', BillingAddress: { City: 'Oslo', Street: null },
    });
    expect((await conn.sobject('Account').retrieve(id)).Id).toBe(id);
  });

  it('denies handshakes without a valid session and subscriptions to unknown channels', async () => {
    const conn = await connect();
    const response = await fetch(`${emulator.url}/cometd/62.0`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: '1' }]),
    });
    expect(await response.json()).toEqual([{
      channel: '/meta/handshake', id: '1', successful: false, error: '403::Handshake denied',
      ext: { sfdc: { failureReason: '401::Authentication invalid' } }, advice: { reconnect: 'none' },
    }]);
    await expect(subscribe(conn, '/data/LeadChangeEvent', -1)).rejects.toMatchObject({
      message: expect.stringContaining('The channel you requested to subscribe to does not exist {/data/LeadChangeEvent}'),
    });
  });
});

describe('Salesforce emulator: state file', () => {
  it('keeps records and retained change events across a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sf-emulator-'));
    try {
      const stateFile = join(dir, 'state.json');
      const conn = await connect({ stateFile, seed: 'demo' });
      const { id } = await conn.sobject('Contact').create({ LastName: 'Persisted', Banyan_Id__c: 'p-1' }) as { id: string };
      for (const client of streamingClients.splice(0)) client.disconnect();
      await emulator.close();

      emulator = await startEmulator({ stateFile, seed: 'demo', cometd: { longPollTimeoutMs: 1000 } });
      const again = await connect();
      const rows = await again.query<{ Id: string }>("SELECT Id FROM Contact WHERE Banyan_Id__c = 'p-1'");
      expect(rows.records.map((r) => r.Id)).toEqual([id]);
      expect((await again.query('SELECT COUNT() FROM Contact')).totalSize).toBe(6);
      const { waitFor } = await subscribe(again, '/data/ContactChangeEvent', -2);
      const [event] = await waitFor(1);
      expect(header(event)?.recordIds).toEqual([id]);
    } finally {
      for (const client of streamingClients.splice(0)) client.disconnect();
      await emulator?.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
