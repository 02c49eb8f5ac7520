import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'jsforce';
import { loginToEmulator, waitFor as waitUntil } from '../helpers';
import { StreamingExtension } from 'jsforce/api/streaming';
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, type EmulatorOptions, startEmulator } from '../../tools/salesforce-emulator/index.js';

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
  const waitFor = (count: number): Promise<ChangeEvent[]> =>
    waitUntil(() => events.length >= count && events, () => `${count} events on ${channel} (got ${events.length})`);
  return { events, waitFor };
}

const header = (event: ChangeEvent | undefined) => event?.payload.ChangeEventHeader;

/** One Bayeux request as raw JSON text: what a CometD client reads before any JSON.parse. */
async function bayeuxText(conn: Connection, message: Record<string, unknown>): Promise<string> {
  const response = await fetch(`${emulator.url}/cometd/62.0`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', Authorization: `OAuth ${conn.accessToken}` },
    body: JSON.stringify([message]),
  });
  return response.text();
}

const bayeux = async (conn: Connection, message: Record<string, unknown>) => JSON.parse(await bayeuxText(conn, message)) as Record<string, unknown>[];

/** Handshakes and subscribes a raw Bayeux client to `channel` from `replayId`; returns its clientId. */
async function rawSubscribe(conn: Connection, channel: string, replayId: number): Promise<string> {
  const [handshake] = await bayeux(conn, { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: '1' });
  const clientId = handshake?.clientId as string;
  const [subscribed] = await bayeux(conn, { channel: '/meta/subscribe', clientId, subscription: channel, ext: { replay: { [channel]: replayId } }, id: '2' });
  expect(subscribed).toMatchObject({ successful: true });
  return clientId;
}

describe('Salesforce emulator: Change Data Capture over CometD', () => {
  it('replays retained events from -2 with CREATE, UPDATE and DELETE payloads in the CometD shape', async () => {
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
    // The CometD header: no nulledFields and no diffFields (Pub/Sub API only).
    const { ChangeEventHeader: createHeader, ...createFields } = created?.payload ?? {};
    expect(createHeader).toEqual({
      entityName: 'Contact', recordIds: [id], changeType: 'CREATE', changeOrigin: 'com/salesforce/api/rest/62.0',
      transactionKey: expect.any(String), sequenceNumber: 1, commitTimestamp: expect.any(Number), commitNumber: expect.any(Number),
      commitUser: expect.stringMatching(/^005/), changedFields: [],
    });
    // CREATE carries the non-empty fields only: no null Salutation, Phone, MailingAddress.State…
    const userId = (createFields as Record<string, unknown>).CreatedById;
    expect(createFields).toEqual({
      Name: { FirstName: 'Ada', LastName: 'Lovelace' },
      Email: 'ada@example.com',
      HasOptedOutOfEmail: false,
      MailingAddress: { Street: '1 Main St', City: 'London' },
      CreatedDate: expect.stringMatching(/Z$/), CreatedById: expect.stringMatching(/^005/),
      LastModifiedDate: expect.stringMatching(/Z$/), LastModifiedById: userId,
    });

    // UPDATE: the changed fields; Email set to null is a null value named in changedFields, nothing more.
    const { ChangeEventHeader: updateHeader, ...updateFields } = updated?.payload ?? {};
    expect(updateHeader).toMatchObject({ changeType: 'UPDATE', recordIds: [id] });
    expect(updateHeader).not.toHaveProperty('nulledFields');
    expect(updateHeader).not.toHaveProperty('diffFields');
    expect(updateHeader?.changedFields.sort()).toEqual(['Email', 'LastModifiedDate', 'MailingAddress.City', 'Phone']);
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

  it('reads client= from Sforce-Call-Options whatever the options around it', async () => {
    const conn = await connect();
    const { waitFor } = await subscribe(conn, '/data/AccountChangeEvent', -1);
    for (const callOptions of ['defaultNamespace=x, client=banyan', 'client=banyan,defaultNamespace=x', ' defaultNamespace = x ,  client = banyan ']) {
      const response = await fetch(`${emulator.url}/services/data/v62.0/sobjects/Account`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', Authorization: `Bearer ${conn.accessToken}`, 'Sforce-Call-Options': callOptions },
        body: JSON.stringify({ Name: callOptions }),
      });
      expect(response.status).toBe(201);
    }
    const events = await waitFor(3);
    expect(events.map((e) => header(e)?.changeOrigin)).toEqual(Array(3).fill('com/salesforce/api/rest/62.0;client=banyan'));
  });

  it('merges the same change to several records of one call into one event naming them all', async () => {
    const conn = await connect();
    const created = await conn.sobject('Contact').create(['A', 'B', 'C', 'D'].map((LastName) => ({ LastName, Email: 'same@example.com' })));
    const ids = created.map((r) => r.id as string);
    const { waitFor } = await subscribe(conn, '/data/ContactChangeEvent', -1);
    // One call: two records get the same change (given in either key order), two others each their own.
    await conn.sobject('Contact').update([
      { Id: ids[0]!, Phone: '1', Email: null }, { Id: ids[1]!, Email: null, Phone: '1' }, { Id: ids[2]!, Phone: '1' }, { Id: ids[3]!, Phone: '2', Email: null },
    ]);
    await conn.sobject('Contact').destroy([ids[0]!, ids[1]!, ids[2]!]);
    const events = await waitFor(4);
    expect(events.map((e) => [header(e)?.changeType, header(e)?.recordIds, header(e)?.sequenceNumber])).toEqual([
      ['UPDATE', [ids[0], ids[1]], 1], ['UPDATE', [ids[2]], 2], ['UPDATE', [ids[3]], 3], ['DELETE', [ids[0], ids[1], ids[2]], 1],
    ]);
    expect(events[0]?.payload).toEqual({
      ChangeEventHeader: expect.objectContaining({ changedFields: ['Phone', 'Email', 'LastModifiedDate'] }),
      Phone: '1', Email: null, LastModifiedDate: expect.any(String),
    });
  });

  it('writes commitNumber digit for digit, beyond 2^53 too', async () => {
    const first = 2n ** 53n + 1n;
    const conn = await connect({ firstCommitNumber: first });
    await conn.sobject('Account').create({ Name: 'Big' });
    await conn.sobject('Account').create({ Name: 'Bigger' });
    expect(emulator.admin.changeEvents().map((e) => (e.payload.ChangeEventHeader as { commitNumber: bigint }).commitNumber)).toEqual([first, first + 1n]);
    const clientId = await rawSubscribe(conn, '/data/AccountChangeEvent', -2);
    const text = await bayeuxText(conn, { channel: '/meta/connect', clientId, connectionType: 'long-polling', id: '3' });
    expect(text).toContain(`"commitNumber":${first}`);
    expect(text).toContain(`"commitNumber":${first + 1n}`);
    expect(await (await fetch(`${emulator.url}/__admin/change-events`)).text()).toContain(`"commitNumber":${first + 1n}`);
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
    expect(gapA?.payload).toEqual({ ChangeEventHeader: expect.objectContaining({ changeType: 'GAP_UPDATE', recordIds: [ids[0]], changedFields: [] }) });
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

  it('holds /meta/connect for the long-poll timeout on the emulator clock, and advises a handshake once the client is forgotten', async () => {
    // A clock that stands still unless moved: only advanceClock below can end the hold.
    const frozen = Date.now();
    const conn = await connect({ cometd: { longPollTimeoutMs: 60_000 }, clock: () => frozen });
    const [handshake] = await bayeux(conn, { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: '1' });
    expect(handshake).toMatchObject({
      successful: true, supportedConnectionTypes: ['long-polling'], ext: { replay: true },
      advice: { reconnect: 'retry', interval: 0, timeout: 60_000 },
    });
    const clientId = handshake?.clientId as string;
    const connectMessage = { channel: '/meta/connect', clientId, connectionType: 'long-polling' };
    expect(await bayeux(conn, { ...connectMessage, id: '2' })).toEqual([expect.objectContaining({ id: '2', successful: true })]);
    const held = bayeux(conn, { ...connectMessage, id: '3' });
    await waitUntil(() => emulator.admin.state().heldConnects === 1, 'the held CometD connect');
    // A hold that ends on the clock ends inside advanceClock, so the count right after it tells.
    emulator.admin.advanceClock(59_999);
    expect(emulator.admin.state().heldConnects).toBe(1);
    emulator.admin.advanceClock(1);
    expect(emulator.admin.state().heldConnects).toBe(0);
    expect(await held).toEqual([expect.objectContaining({ id: '3', successful: true })]);
    expect(emulator.admin.state().heldConnects).toBe(0);

    emulator.admin.expireCometdClients();
    expect(await bayeux(conn, { ...connectMessage, id: '4' })).toEqual([{
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
    // As CREATE: the non-empty fields of the restored record only.
    expect(restored?.payload).toEqual({
      ChangeEventHeader: expect.objectContaining({ changeType: 'UNDELETE', recordIds: [id] }),
      Name: 'Phoenix', BillingAddress: { City: 'Oslo' },
      CreatedDate: expect.any(String), CreatedById: expect.any(String), LastModifiedDate: expect.any(String), LastModifiedById: expect.any(String),
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
      const conn = await connect({ stateFile, seed: 'demo', firstCommitNumber: 2n ** 53n + 1n });
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
      // Saved and loaded digit for digit, and counted on from there.
      expect(emulator.admin.changeEvents().map((e) => (e.payload.ChangeEventHeader as { commitNumber: bigint }).commitNumber)).toEqual([2n ** 53n + 1n]);
      await again.sobject('Account').create({ Name: 'Next' });
      expect((emulator.admin.changeEvents().at(-1)?.payload.ChangeEventHeader as { commitNumber: bigint }).commitNumber).toBe(2n ** 53n + 2n);
    } finally {
      for (const client of streamingClients.splice(0)) client.disconnect();
      await emulator?.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
