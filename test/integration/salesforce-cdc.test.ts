import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Connection } from 'jsforce';
import type { KafkaMessage } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { createSalesforceCdcSource, type SalesforceCdcSource } from '../../src/import/salesforce-cdc';
import type { CdcOptions } from '../../src/import/salesforce-cdc/config';
import { AvroEncoder } from '../../src/runtime/avro';
import { parseConfig, type BanyanConfig, type SalesforceCdcSourceConfig } from '../../src/config';
import { createKafka } from '../../src/runtime/kafka';
import { createRootLogger } from '../../src/runtime/logger';
import { KafkaOffsetStore } from '../../src/runtime/offsets';
import { createSchemaRegistry } from '../../src/runtime/registry';
import { runnerOptions, SourceRunner } from '../../src/runtime/source-runner';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../tools/salesforce-emulator/index.js';
import { untilCommitted } from '../committed';
import { decodeMessages, freshName, loginToEmulator, readAll, readTopic, waitFor, type ReadMessage } from '../helpers';

/**
 * The Salesforce CDC source against the emulator, through a real SourceRunner, Kafka transactions
 * and the registry: what it writes is read back read_committed and decoded.
 */

interface Change {
  op: string;
  entity: string;
  recordId: string;
  fields: Record<string, unknown>;
  changedFields: string[];
  nulledFields: string[];
  header: { changeType: string; changeOrigin: string | null; commitTimestamp: bigint | null; commitNumber: bigint | null };
  replayId: bigint | null;
  echo: boolean;
  reconciled: boolean;
}

interface LogLine {
  level: number;
  event?: string;
  [key: string]: unknown;
}

let emulator: Emulator | undefined;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  await emulator?.close();
  emulator = undefined;
});

async function freshEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  emulator = await startEmulator({ port: 0, cometd: { longPollTimeoutMs: 1000 }, ...opts });
  // Secrets reach the config only as ${ENV} references, as in a user's file.
  process.env.SFCDC_TEST_PASSWORD = emulator.credentials.password;
  process.env.SFCDC_TEST_CLIENT_SECRET = emulator.credentials.clientSecret;
  return emulator;
}

function cdcYaml(em: Emulator, opts: { topic: string; batchSize?: number; pollIntervalMs?: number }): string {
  return `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('sfcdc')}
  topics: { offsets: ${freshName('offsets')}, deadLetter: ${freshName('dlq')}, partitions: 3 }
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
log: { level: warn }
salesforce:
  loginUrl: ${em.url}
  username: ${em.credentials.username}
  password: \${SFCDC_TEST_PASSWORD}
  clientId: ${em.credentials.clientId}
  clientSecret: \${SFCDC_TEST_CLIENT_SECRET}

sources:
  - name: contacts
    type: salesforce-cdc
    object: Contact
    topic: ${opts.topic}
    batchSize: ${opts.batchSize ?? 100}
    pollIntervalMs: ${opts.pollIntervalMs ?? 50}
`;
}

function sourceConfig(config: BanyanConfig): SalesforceCdcSourceConfig {
  return config.sources[0] as SalesforceCdcSourceConfig;
}

interface Running {
  source: SalesforceCdcSource;
  runner: SourceRunner;
  logs: LogLine[];
}

/** A SourceRunner around a fresh source, as `banyan run` would build it. */
async function startRunner(config: BanyanConfig, options: Partial<CdcOptions> = {}): Promise<Running> {
  const logs: LogLine[] = [];
  const logger = createRootLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const kafka = createKafka(config.kafka, createRootLogger('silent'));
  const source = createSalesforceCdcSource(config.salesforce!, sourceConfig(config), {
    logger,
    options: { gapWindowMs: 200, ...options },
    clientOptions: { retry: { minMs: 20, maxMs: 200, rateLimitMinMs: 50 } },
  });
  const runner = new SourceRunner(
    source, kafka, new AvroEncoder(createSchemaRegistry(config.schemaRegistry)),
    new KafkaOffsetStore(kafka, config.kafka.topics.offsets, 1), logger,
    { ...runnerOptions(config), backoffMs: { min: 100, max: 1000 } },
  );
  await runner.start();
  cleanups.push(() => runner.stop());
  return { source, runner, logs };
}

const salesforce = loginToEmulator;

async function readChanges(config: BanyanConfig, topic: string, count: number, timeoutMs = 10_000): Promise<Array<Change & { key: string }>> {
  const kafka = createKafka(config.kafka, createRootLogger('silent'));
  const messages = await readTopic(kafka, topic, count, timeoutMs);
  return decodeAll(config, messages);
}

/**
 * Everything the source wrote, once its committed offset names the emulator's last Contact event:
 * all of it is committed then, and nothing more can come, so the result is exact.
 */
async function readAllChanges(config: BanyanConfig, em: Emulator): Promise<Array<Change & { key: string }>> {
  const kafka = createKafka(config.kafka, createRootLogger('silent'));
  const last = em.admin.changeEvents().filter((e) => e.entityName === 'Contact').at(-1)?.replayId;
  await untilCommitted(kafka, config.kafka.topics.offsets, 'contacts', { object: 'Contact' }, (o) => o.replayId === last);
  return decodeAll(config, await readAll(kafka, sourceConfig(config).topic!));
}

type RawHeader = Record<string, unknown> & { recordIds: string[] };
const rawEvents = (em: Emulator) => em.admin.changeEvents().map((e) => ({ replayId: e.replayId, ...(e.payload as Record<string, unknown>) }) as { replayId: number; ChangeEventHeader: RawHeader } & Record<string, unknown>);

async function decodeAll(config: BanyanConfig, messages: ReadMessage[]): Promise<Array<Change & { key: string }>> {
  const changes = (await decodeMessages<Change, { Id: string }>(config, messages)).map((m) => ({ ...m.value!, key: m.key.Id, headers: m.headers }));
  // Partitions interleave: the order that matters is per record, and replayIds give it (re-reads after an expired replayId have none: last).
  const order = (c: Change) => (c.replayId === null ? Number.MAX_SAFE_INTEGER : Number(c.replayId));
  return changes.sort((a, b) => order(a) - order(b));
}

const header = (m: { headers?: KafkaMessage['headers'] | Record<string, string> }, name: string) => m.headers?.[name]?.toString();

describe('Salesforce CDC source', () => {
  it('writes CREATE, UPDATE (changed fields only, nulls named) and DELETE in order from CometD-shaped events', async () => {
    const em = await freshEmulator();
    const topic = freshName('salesforce.Contact');
    const config = parseConfig(cdcYaml(em, { topic }), 'salesforce-cdc test');
    const { source } = await startRunner(config);
    const conn = await salesforce(em);

    const { id } = (await conn.sobject('Contact').create({ FirstName: 'Ada', LastName: 'Lovelace', Email: 'ada@example.com', MailingStreet: '1 Main St', MailingCity: 'London' })) as { id: string };
    const description = 'Notes. '.repeat(4571); // 31,997 characters of a 32,000 long text area
    await conn.sobject('Contact').update({ Id: id, Email: null, MailingCity: 'Paris', Phone: '+33 1', Description: description });
    await conn.sobject('Contact').destroy(id);

    // What came over CometD: a CREATE without its empty fields, an UPDATE whose header has no nulledFields.
    const [rawCreate, rawUpdate] = rawEvents(em);
    expect(rawCreate).not.toHaveProperty('Phone');
    expect(rawCreate?.Name).toEqual({ FirstName: 'Ada', LastName: 'Lovelace' });
    expect(rawUpdate?.ChangeEventHeader).not.toHaveProperty('nulledFields');
    expect(rawUpdate?.Email).toBeNull();

    const changes = await readAllChanges(config, em);
    expect(changes.map((c) => [c.op, c.key])).toEqual([['create', id], ['update', id], ['delete', id]]);
    const [created, updated, deleted] = changes;
    // Every field: the ones the event left out were empty, and are null.
    const t = expect.stringMatching(/Z$/);
    const user = expect.stringMatching(/^005/);
    expect(created?.fields).toEqual({
      'Name.Salutation': null, 'Name.FirstName': 'Ada', 'Name.LastName': 'Lovelace', AccountId: null, Email: 'ada@example.com', Phone: null,
      Birthdate: null, HasOptedOutOfEmail: false, Description: null, Banyan_Id__c: null,
      'MailingAddress.Street': '1 Main St', 'MailingAddress.City': 'London', 'MailingAddress.State': null, 'MailingAddress.PostalCode': null,
      'MailingAddress.Country': null, 'MailingAddress.Latitude': null, 'MailingAddress.Longitude': null, 'MailingAddress.GeocodeAccuracy': null,
      CreatedDate: t, CreatedById: user, LastModifiedDate: t, LastModifiedById: user,
    });
    // Only what changed; Email is present as null (set to null, named from the body), FirstName is absent (unchanged).
    expect(updated?.fields).toEqual({ Email: null, 'MailingAddress.City': 'Paris', Phone: '+33 1', Description: description, LastModifiedDate: t });
    expect([...(updated?.changedFields ?? [])].sort()).toEqual(['Description', 'Email', 'LastModifiedDate', 'MailingAddress.City', 'Phone']);
    expect(updated?.nulledFields).toEqual(['Email']);
    expect(deleted?.fields).toEqual({});
    expect(changes.every((c) => !c.echo && !c.reconciled && c.entity === 'Contact')).toBe(true);
    expect(created?.header).toMatchObject({ changeType: 'CREATE', changeOrigin: 'com/salesforce/api/rest/62.0' });
    // commitNumber as Salesforce's examples have it (below 2^53): carried exactly.
    expect(changes.map((c) => c.header.commitNumber)).toEqual(em.admin.changeEvents().map((e) => (e.payload.ChangeEventHeader as { commitNumber: bigint }).commitNumber));
    expect(header(changes[0] as never, 'banyan.origin')).toBe('salesforce');
    expect(changes.map((c) => header(c as never, 'banyan.operation'))).toEqual(['insert', 'update', 'delete']);
    expect(header(changes[1] as never, 'banyan.source.position')).toBe(String(updated?.replayId));
    expect(source.status()).toMatchObject({ events: 3, records: 3, echoes: 0, deadLetters: 0 });
  });

  it('writes one record per record id of a merged event, and no commitNumber it cannot know exactly', async () => {
    const em = await freshEmulator({ firstCommitNumber: 2n ** 53n + 1n });
    const topic = freshName('salesforce.Contact');
    const config = parseConfig(cdcYaml(em, { topic }), 'salesforce-cdc test');
    const conn = await salesforce(em);
    const created = await conn.sobject('Contact').create(['A', 'B', 'C'].map((LastName) => ({ LastName, Email: `${LastName}@example.com` })));
    const [a, b, c] = created.map((r) => r.id as string);
    const { source } = await startRunner(config);

    // One call, the same change to three records: one event naming them all; then one deleting two.
    await conn.sobject('Contact').update([a!, b!, c!].map((Id) => ({ Id, Email: null, Phone: '7' })));
    await conn.sobject('Contact').destroy([a!, b!]);
    const raw = rawEvents(em).filter((e) => e.ChangeEventHeader.changeType !== 'CREATE');
    expect(raw.map((e) => [e.ChangeEventHeader.changeType, e.ChangeEventHeader.recordIds])).toEqual([['UPDATE', [a, b, c]], ['DELETE', [a, b]]]);

    const changes = await readAllChanges(config, em);
    const [update, remove] = raw;
    const record = (op: string, key: string, replayId: number, fields: Record<string, unknown>, changedFields: string[], nulledFields: string[], changeType: string) => ({
      op, key, recordId: key, entity: 'Contact', fields, changedFields, nulledFields, diffFields: [],
      header: expect.objectContaining({ changeType, commitNumber: null }), replayId: BigInt(replayId), echo: false, reconciled: false,
    });
    const updated = { Email: null, Phone: '7', LastModifiedDate: expect.stringMatching(/Z$/) };
    const changed = ['Email', 'Phone', 'LastModifiedDate'];
    const byOpAndKey = (x: Change & { key: string }, y: Change & { key: string }) => x.op.localeCompare(y.op) || x.key.localeCompare(y.key);
    expect(changes.map(({ headers: _headers, ...x }: Change & { key: string; headers?: unknown }) => x).sort(byOpAndKey)).toEqual([
      record('delete', a!, remove!.replayId, {}, [], [], 'DELETE'),
      record('delete', b!, remove!.replayId, {}, [], [], 'DELETE'),
      record('update', a!, update!.replayId, updated, changed, ['Email'], 'UPDATE'),
      record('update', b!, update!.replayId, updated, changed, ['Email'], 'UPDATE'),
      record('update', c!, update!.replayId, updated, changed, ['Email'], 'UPDATE'),
    ]);
    expect(changes).toHaveLength(5);
    expect(source.status()).toMatchObject({ events: 2, records: 5 });
  });

  it('marks changes made under Banyan’s client id as echoes', async () => {
    const em = await freshEmulator();
    const topic = freshName('salesforce.Contact');
    const config = parseConfig(cdcYaml(em, { topic }), 'salesforce-cdc test');
    const { source } = await startRunner(config);
    const own = await salesforce(em, { client: 'banyan' });
    const other = await salesforce(em, { client: 'banyan-other' });

    const { id } = (await other.sobject('Contact').create({ LastName: 'Echo' })) as { id: string };
    await own.sobject('Contact').update({ Id: id, Phone: '1' });
    const changes = await readAllChanges(config, em);
    expect(changes.map((c) => [c.op, c.echo, header(c as never, 'banyan.echo')])).toEqual([['create', false, undefined], ['update', true, 'true']]);
    expect(changes[1]?.header.changeOrigin).toBe('com/salesforce/api/rest/62.0;client=banyan');
    expect(source.status().echoes).toBe(1);
  });

  it('reconciles GAP events into full records read through REST in one micro-batch, deletes included', async () => {
    const em = await freshEmulator();
    const topic = freshName('salesforce.Contact');
    const config = parseConfig(cdcYaml(em, { topic }), 'salesforce-cdc test');
    const conn = await salesforce(em);
    const created = await conn.sobject('Contact').create([{ LastName: 'A', Email: 'a@example.com' }, { LastName: 'B' }, { LastName: 'C' }]);
    const [a, b, c] = created.map((r) => r.id as string);
    const { source } = await startRunner(config);

    em.admin.gapNextChanges(3);
    await conn.sobject('Contact').update([{ Id: a!, Phone: '111', MailingCity: 'Oslo' }, { Id: b!, Email: 'b@example.com' }]);
    await conn.sobject('Contact').destroy(c!);
    await conn.sobject('Contact').update({ Id: a!, Phone: '222' });

    const changes = await readAllChanges(config, em);
    expect(changes.map((x) => [x.op, x.header.changeType, x.key])).toEqual([
      ['reconciled', 'GAP_UPDATE', a], ['reconciled', 'GAP_UPDATE', b], ['delete', 'GAP_DELETE', c], ['update', 'UPDATE', a],
    ]);
    const [ra, rb, rc] = changes;
    // Full records, read after the gap: every field, named as CDC names them.
    expect(ra?.fields).toMatchObject({ 'Name.LastName': 'A', Email: 'a@example.com', 'MailingAddress.City': 'Oslo', 'MailingAddress.Street': null, Phone: expect.any(String) });
    expect(ra?.fields).not.toHaveProperty('MailingCity');
    expect(rb?.fields).toMatchObject({ 'Name.LastName': 'B', Email: 'b@example.com' });
    expect([ra, rb, rc].every((x) => x?.reconciled)).toBe(true);
    expect(ra?.header.commitTimestamp).toEqual(expect.any(BigInt));
    const status = source.status();
    expect(status).toMatchObject({ gapEvents: 3, reconciledRecords: 3 });
    // One window, one `Id IN (…)` query for the three ids.
    expect(status.apiCalls.gap).toBe(1);
  });

  it('re-reads the entity by SystemModstamp after a GAP_OVERFLOW', async () => {
    const em = await freshEmulator();
    const topic = freshName('salesforce.Contact');
    const config = parseConfig(cdcYaml(em, { topic }), 'salesforce-cdc test');
    const conn = await salesforce(em);
    const { source, logs } = await startRunner(config);
    const { id: before } = (await conn.sobject('Contact').create({ LastName: 'Before' })) as { id: string };
    await readChanges(config, topic, 1);

    em.admin.overflowNextChanges(3);
    const records = Array.from({ length: 4 }, (_, i) => ({ Banyan_Id__c: `o-${i}`, LastName: `O${i}`, Email: `o${i}@example.com` }));
    const ids = (await conn.sobject('Contact').upsert(records, 'Banyan_Id__c')).map((r) => r.id as string);

    // Events: CREATE Before, CREATE o-3, GAP_OVERFLOW (o-0…o-2 folded). The re-read reaches back to
    // the last known commit time minus the look-back (60 s): Before and all four o-* come back whole.
    const changes = await readAllChanges(config, em);
    expect(changes).toHaveLength(7);
    const reread = changes.filter((x) => x.reconciled);
    expect(reread.map((x) => x.key).sort()).toEqual([before, ...ids].sort());
    expect(reread.every((x) => x.op === 'reconciled' && x.header.changeType === 'GAP_OVERFLOW' && !x.echo)).toBe(true);
    expect(reread.find((x) => x.key === ids[0])?.fields).toMatchObject({ 'Name.LastName': 'O0', Email: 'o0@example.com', Banyan_Id__c: 'o-0' });
    expect(changes.filter((x) => !x.reconciled).map((x) => [x.op, x.key])).toEqual([['create', before], ['create', ids[3]]]);
    expect(source.status().overflowEvents).toBe(1);
    expect(source.status().apiCalls.overflow).toBe(1);
    expect(logs.some((l) => l.event === 'cdc.reread_started' && l.cause === 'GAP_OVERFLOW')).toBe(true);
  });

  it('applies the expired-replayId policy loudly: re-reads what changed while stopped, then follows new events', async () => {
    const em = await freshEmulator();
    const topic = freshName('salesforce.Contact');
    const config = parseConfig(cdcYaml(em, { topic }), 'salesforce-cdc test');
    const conn = await salesforce(em);
    const first = await startRunner(config);
    const { id: a } = (await conn.sobject('Contact').create({ LastName: 'Kept' })) as { id: string };
    await readChanges(config, topic, 1);
    await first.runner.stop();

    // Stopped for longer than the 72-hour retention: the change made right after the stop is gone
    // from the stream, and with it the position after the stored replayId.
    await conn.sobject('Contact').update({ Id: a, Email: 'kept@example.com' });
    em.admin.advanceClock(72 * 60 * 60 * 1000 + 60_000);
    const { id: b } = (await conn.sobject('Contact').create({ LastName: 'Missed' })) as { id: string };

    const second = await startRunner(config);
    const reread = await readChanges(config, topic, 3);
    expect(reread.slice(1).map((x) => [x.op, x.key, x.header.changeType]).sort()).toEqual(
      [['reconciled', a, 'REPLAY_EXPIRED'], ['reconciled', b, 'REPLAY_EXPIRED']].sort(),
    );
    expect(reread.find((x) => x.key === a && x.reconciled)?.fields).toMatchObject({ Email: 'kept@example.com', 'Name.LastName': 'Kept' });
    const expired = second.logs.find((l) => l.event === 'cdc.replay_expired');
    expect(expired).toMatchObject({ level: 50, policy: 'reread', replayId: Number(reread[0]?.replayId) });
    expect(second.source.status()).toMatchObject({ replayExpired: 1, rereadRecords: 2 });
    expect(second.source.status().apiCalls.reread).toBe(1);

    // Nothing stalls: new changes flow, and once one is stored a restart needs no second re-read.
    const { id: c } = (await conn.sobject('Contact').create({ LastName: 'After' })) as { id: string };
    const withNew = await readChanges(config, topic, 4);
    expect(withNew.filter((x) => !x.reconciled).map((x) => [x.op, x.key])).toEqual([['create', a], ['create', c]]);
    await second.runner.stop();
    const third = await startRunner(config);
    await conn.sobject('Contact').update({ Id: c, Phone: '3' });
    const more = await readChanges(config, topic, 5);
    expect(more.filter((x) => !x.reconciled).map((x) => [x.op, x.key])).toEqual([['create', a], ['create', c], ['update', c]]);
    expect(third.source.status().replayExpired).toBe(0);
    expect(third.logs.some((l) => l.event === 'cdc.replay_expired')).toBe(false);
  });

  it('survives an ended session and rate limits: logs in again, backs off, and loses nothing', async () => {
    const em = await freshEmulator();
    const topic = freshName('salesforce.Contact');
    const config = parseConfig(cdcYaml(em, { topic }), 'salesforce-cdc test');
    const conn = await salesforce(em);
    const { id } = (await conn.sobject('Contact').create({ LastName: 'Session' })) as { id: string };
    const { source, logs } = await startRunner(config);
    await conn.sobject('Contact').update({ Id: id, Phone: '0' });
    await readChanges(config, topic, 1);

    // Every token stops working (REST 401, CometD 401::Authentication invalid); the next REST calls are refused for the rate limit.
    em.admin.expireSessions();
    const again = await salesforce(em);
    em.admin.gapNextChanges(1);
    await again.sobject('Contact').update({ Id: id, Phone: '1' });
    em.admin.rateLimitNextCalls(2);
    await readChanges(config, topic, 2);
    await again.sobject('Contact').update({ Id: id, Phone: '2' });
    const changes = await readAllChanges(config, em);
    expect(changes.map((x) => [x.op, x.fields.Phone])).toEqual([['update', '0'], ['reconciled', '1'], ['update', '2']]);

    await waitFor(() => logs.some((l) => l.event === 'cdc.stream_failed'), 'the cdc.stream_failed log event');
    expect(logs.find((l) => l.event === 'cdc.stream_failed')).toMatchObject({ kind: 'auth' });
    expect(logs.some((l) => l.event === 'salesforce.session_refreshed')).toBe(true);
    expect(logs.filter((l) => l.event === 'salesforce.retry' && l.errorCode === 'REQUEST_LIMIT_EXCEEDED')).toHaveLength(2);
    // The refused calls count (one more when the gap query met the ended session first).
    expect(source.status().apiCalls.gap).toBeGreaterThanOrEqual(3);
    expect(source.status().apiCalls.gap).toBeLessThanOrEqual(4);
  });
});

describe('Salesforce CDC source killed with SIGKILL mid-stream', () => {
  it('writes every change exactly once after a restart', async () => {
    const em = await freshEmulator();
    const topic = freshName('salesforce.Contact');
    const yaml = cdcYaml(em, { topic, batchSize: 3, pollIntervalMs: 20 });
    const dir = mkdtempSync(join(tmpdir(), 'banyan-sfcdc-'));
    const configFile = join(dir, 'banyan.yaml');
    writeFileSync(configFile, yaml);
    const script = join(dir, 'run-cdc.mts');
    writeFileSync(script, childScript());
    const config = parseConfig(yaml, configFile);
    const kafka = createKafka(config.kafka, createRootLogger('silent'));
    const conn = await salesforce(em);

    const offsets = config.kafka.topics.offsets;
    const partition = { object: 'Contact' };

    let child = await startChild(script, configFile);
    const created = await conn.sobject('Contact').create(Array.from({ length: 5 }, (_, i) => ({ LastName: `K${i}` })));
    const ids = created.map((r) => r.id as string);
    const update = (i: number) => conn.sobject('Contact').update({ Id: ids[i % ids.length]!, Phone: String(i), Email: i % 3 === 0 ? null : `k${i}@example.com` });
    // The writer is gated on what the test saw: 7 updates (12 changes), then more while the child is
    // killed once 12 are committed, and the last 20 only after it is dead. So the kill lands
    // mid-stream, before the 45th change, on any machine.
    let sawCommitted!: () => void;
    let sawKilled!: () => void;
    const committedTwelve = new Promise<void>((resolve) => (sawCommitted = resolve));
    const killed = new Promise<void>((resolve) => (sawKilled = resolve));
    const writes = (async () => {
      for (let i = 0; i < 40; i++) {
        if (i === 7) await committedTwelve;
        if (i === 20) await killed;
        await update(i);
      }
    })();
    writes.catch(() => undefined); // awaited below; a failed test must not leave it unhandled
    await untilCommitted(kafka, offsets, 'contacts', partition, (o) => Number(o.replayId) >= 12);
    sawCommitted();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const atKill = em.admin.changeEvents().length;
    sawKilled();
    await writes;
    const events = em.admin.changeEvents().filter((e) => e.entityName === 'Contact');
    expect(events).toHaveLength(45);
    expect(atKill).toBeGreaterThanOrEqual(12);
    expect(atKill).toBeLessThanOrEqual(25);

    child = await startChild(script, configFile);
    // Once the committed offset names the last change, everything is in Kafka and nothing more is coming.
    const last = events.at(-1)!.replayId;
    await untilCommitted(kafka, offsets, 'contacts', partition, (o) => o.replayId === last);
    const changes = await decodeAll(config, await readAll(kafka, topic));
    // Exactly once: 45 records, one per change event, none twice.
    expect(changes.map((c) => Number(c.replayId))).toEqual(events.map((e) => e.replayId));
    expect(changes.map((c) => c.op)).toEqual([...Array(5).fill('create'), ...Array(40).fill('update')]);
    // The last change of every record is its last update.
    for (const [i, id] of ids.entries()) {
      const lastOfRecord = changes.filter((c) => c.key === id).at(-1);
      expect(lastOfRecord?.fields.Phone).toBe(String(35 + i));
    }
  }, 40_000);
});

/** A `banyan run`-like process for one CDC source: what a deployment runs, so SIGKILL kills it for real. */
function childScript(): string {
  const src = (path: string) => JSON.stringify(pathToFileURL(resolve(path)).href);
  return `
import { createSalesforceCdcSource } from ${src('src/import/salesforce-cdc/index.ts')};
import { AvroEncoder } from ${src('src/runtime/avro.ts')};
import { loadConfigFile } from ${src('src/config/index.ts')};
import { createKafka } from ${src('src/runtime/kafka.ts')};
import { createRootLogger } from ${src('src/runtime/logger.ts')};
import { KafkaOffsetStore } from ${src('src/runtime/offsets.ts')};
import { createSchemaRegistry } from ${src('src/runtime/registry.ts')};
import { runnerOptions, SourceRunner } from ${src('src/runtime/source-runner.ts')};

const config = loadConfigFile(process.argv[2]);
const logger = createRootLogger('warn', { write: (line) => process.stderr.write(line) });
const kafka = createKafka(config.kafka, logger);
const source = createSalesforceCdcSource(config.salesforce, config.sources[0], { logger });
const runner = new SourceRunner(source, kafka, new AvroEncoder(createSchemaRegistry(config.schemaRegistry)),
  new KafkaOffsetStore(kafka, config.kafka.topics.offsets, 1), logger, runnerOptions(config));
await runner.start();
process.stdout.write('ready\\n');
`;
}

async function startChild(script: string, configFile: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, configFile], { cwd: resolve('.'), stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  cleanups.push(() => child.kill('SIGKILL'));
  child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error('the CDC child process did not start within 15 s')), 15_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) {
        clearTimeout(timer);
        ready();
      }
    });
    child.once('exit', (code) => fail(new Error(`the CDC child process exited with ${code}`)));
  });
  return child;
}
