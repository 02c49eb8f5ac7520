import type { ChildProcess } from 'node:child_process';
import type { Connection } from 'jsforce';
import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig, type BanyanConfig } from '../../src/config';
import { createDialect } from '../../src/dialects';
import { DomainDecoder } from '../../src/domain/decoder';
import type { DomainEvent } from '../../src/domain/event';
import { createPublisher, type Publisher } from '../../src/domain/publish';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { catalogOf } from '../../src/transforms/module';
import { startEmulator, type Emulator } from '../../tools/salesforce-emulator/index.js';
import { freshName, listeningUrl, loginToEmulator, readAll, spawnBanyan, testKafka, waitFor, withAdmin, writeConfigFile } from '../helpers';
import { LEGACY_DATABASES, serviceEvent, user } from '../legacy-databases';

/**
 * The whole bridge in one `banyan run`: a PostgreSQL legacy users table (changelog source, the
 * legacy-users transform, the legacy sink), the emulator's Contacts (CDC source on a channel
 * enriched with Banyan_Id__c, the salesforce-contact transform, the Salesforce sink), real Kafka
 * and registry. Every test counts exactly on every side: legacy rows and changelog rows, domain
 * events, Contacts and the sinks' writes. "Settled" is observed, never waited out: every consumer
 * group has committed the end of its inputs and the CDC source has read the emulator's last event.
 */

const postgres = LEGACY_DATABASES.find((d) => d.name === 'postgres')!;

interface Bridge {
  config: BanyanConfig;
  file: string;
  db: Knex;
  table: string;
  changelog: string;
  prefix: string;
  emulator: Emulator;
  /** A Salesforce user's connection (no Sforce-Call-Options). */
  sf: Connection;
  publisher: Publisher;
  url: string;
  child: ChildProcess;
}

const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function bridge(options: { states?: { user?: string; address?: string }; rows?: Array<Record<string, unknown>>; sink?: string } = {}): Promise<Omit<Bridge, 'url' | 'child'>> {
  const emulator = await startEmulator({
    port: 0,
    cometd: { longPollTimeoutMs: 1000 },
    channels: [{ fullName: 'BanyanContacts__chn', members: [{ selectedEntity: 'ContactChangeEvent', enrichedFields: ['Banyan_Id__c'] }] }],
  });
  cleanups.push(() => emulator.close());
  process.env.BRIDGE_SF_PASSWORD = emulator.credentials.password;
  process.env.BRIDGE_SF_CLIENT_SECRET = emulator.credentials.clientSecret;
  const prepared = await postgres.prepare();
  cleanups.push(prepared.cleanup);
  const prefix = freshName('domain');
  const legacyTopic = freshName('legacy.users');
  const contactTopic = freshName('salesforce.Contact');
  const st = options.states ?? {};
  const yaml = `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('bridge')}
  topics: { offsets: ${freshName('offsets')}, deadLetter: ${freshName('dlq')}, control: ${freshName('control')}, controlAudit: ${freshName('audit')}, domainPrefix: ${prefix} }
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
log: { level: info }
http: { port: 0 }
originTag: ${freshName('banyan')}
${prepared.yaml}
salesforce:
  loginUrl: ${emulator.url}
  username: ${emulator.credentials.username}
  password: \${BRIDGE_SF_PASSWORD}
  clientId: ${emulator.credentials.clientId}
  clientSecret: \${BRIDGE_SF_CLIENT_SECRET}
changeTypes:
  user: { initial: ${st.user ?? 'dual'} }
  address: { initial: ${st.address ?? 'dual'} }
sources:
  - { name: users, type: changelog, database: legacy, table: ${prepared.table}, topic: ${legacyTopic}, snapshot: false, pollIntervalMs: 20 }
  - { name: contacts, type: salesforce-cdc, object: Contact, channel: /data/BanyanContacts__chn, replayFrom: -2, topic: ${contactTopic}, pollIntervalMs: 20 }
transforms:
  - name: legacy-users
    from: ${legacyTopic}
    format: legacy-changelog
    changeTypes: [user, address]
    events:
      - { event: UserChanged, key: id, fields: { firstName: first_name, lastName: last_name, email: email } }
      - { event: AddressChanged, key: id, fields: { street: street, city: city, postalCode: postal_code, state: state, country: country } }
  - { name: salesforce-contacts, from: ${contactTopic}, format: salesforce-cdc, changeTypes: [user, address], mapping: salesforce-contact, options: { idField: Banyan_Id__c } }
sinks:
  - { name: legacy-back, type: legacy, mapping: legacy-users, missingRow: { waitMs: 0 } }
  - { name: contacts-out, type: salesforce, mapping: salesforce-contacts, lingerMs: 20${options.sink ?? ''} }
`;
  const file = writeConfigFile(yaml);
  const config = parseConfig(yaml, file);
  await prepared.db.raw(postgres.ddl(prepared.table));
  if (options.rows?.length) await prepared.db(prepared.table).insert(options.rows);
  await migrateChangelogs(prepared.db, createDialect(config.databases.legacy!), [prepared.table]);
  const publisher = await createPublisher({ kafka: testKafka(config), schemaRegistry: config.schemaRegistry.url, catalog: catalogOf(config) }, freshName('service'));
  cleanups.push(() => publisher.close());
  return { config, file, db: prepared.db, table: prepared.table, changelog: postgres.beside(prepared.table, 'banyan_cl_users'), prefix, emulator, sf: await loginToEmulator(emulator), publisher };
}

async function run(b: Omit<Bridge, 'url' | 'child'>): Promise<Bridge> {
  const child = spawnBanyan(b.file, ['run'], 'pipe');
  children.push(child);
  return { ...b, child, url: await listeningUrl(child) };
}

interface PipelineStatus {
  name: string;
  kind: string;
  records: number;
  deadLetters: number;
  details: Record<string, unknown> & { groupId?: string; inputs?: number; dropped?: Record<string, number> };
}
interface Status {
  sources: PipelineStatus[];
  transforms: PipelineStatus[];
  sinks: PipelineStatus[];
}

async function status(b: Bridge): Promise<Status> {
  return (await (await fetch(`${b.url}/status`)).json()) as Status;
}

/**
 * Nothing is in flight: the CDC source has read the emulator's last change event, the changelog
 * source has read every changelog row, and every transform and sink group has committed the end of
 * each of its input partitions.
 */
async function settled(b: Bridge): Promise<boolean> {
  const s = await status(b);
  const lastEvent = b.emulator.admin.changeEvents().at(-1)?.replayId ?? null;
  const cdc = s.sources.find((p) => p.name === 'contacts')!;
  if (lastEvent !== null && cdc.details.lastReplayId !== lastEvent) return false;
  // Each changelog row becomes one record of the legacy topic (an echo too, flagged).
  const [{ n }] = (await b.db(b.changelog).count({ n: '*' })) as [{ n: string | number }];
  if ((await readAll(testKafka(b.config), legacyTopic(b))).length !== Number(n)) return false;
  const kafka = testKafka(b.config);
  return withAdmin(kafka, async (admin) => {
    for (const p of [...s.transforms, ...s.sinks]) {
      const groupId = p.details.groupId!;
      const topics = (await admin.fetchOffsets({ groupId })).map((t) => t.topic);
      const inputs = p.kind === 'transform' ? [b.config.transforms.find((t) => t.name === p.name)!.from] : topics;
      for (const topic of inputs) {
        if (!(await admin.listTopics()).includes(topic)) continue;
        const ends = await admin.fetchTopicOffsets(topic);
        const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
        for (const end of ends) {
          if (BigInt(end.high) === 0n) continue;
          const done = committed!.partitions.find((c) => c.partition === end.partition)?.offset ?? '-1';
          if (BigInt(done) < BigInt(end.high) && !(await onlyMarkersFrom(kafka, topic, end.partition, BigInt(done)))) return false;
        }
      }
    }
    return true;
  });
}

function legacyTopic(b: Bridge): string {
  const source = b.config.sources.find((x) => x.name === 'users')!;
  return source.type === 'changelog' ? source.topic! : '';
}

/** Whether what is left of a partition after `from` is transaction markers only (a consumer never commits past them). */
async function onlyMarkersFrom(kafka: ReturnType<typeof testKafka>, topic: string, partition: number, from: bigint): Promise<boolean> {
  const messages = (await readAll(kafka, topic)).filter((m) => m.partition === partition && BigInt(m.offset) >= from);
  return messages.length === 0;
}

async function events(b: Bridge, entity: 'user' | 'address'): Promise<DomainEvent[]> {
  const decoder = new DomainDecoder(b.config.schemaRegistry.url, catalogOf(b.config));
  const topic = `${b.prefix}.${entity}`;
  const out: DomainEvent[] = [];
  for (const m of await readAll(testKafka(b.config), topic)) if (m.value) out.push(await decoder.event(topic, m.value));
  return out;
}

interface Contact {
  Id: string;
  FirstName: string | null;
  LastName: string;
  Email: string | null;
  MailingCity: string | null;
  Banyan_Id__c: string | null;
}

async function contacts(b: Bridge): Promise<Contact[]> {
  const result = await b.sf.query<Contact>('SELECT Id, FirstName, LastName, Email, MailingCity, Banyan_Id__c FROM Contact');
  return result.records;
}

function sink(s: Status, name: string): PipelineStatus {
  return s.sinks.find((p) => p.name === name)!;
}

describe('the whole bridge: legacy database, domain topics and Salesforce in step', () => {
  it('a legacy change reaches Salesforce once and comes back nowhere', async () => {
    const b = await run(await bridge());
    await b.db(b.table).insert(user(1));
    await waitFor(async () => (await contacts(b)).length === 1, 'the Contact of legacy user 1');
    await waitFor(() => settled(b), 'the bridge to settle');

    expect((await contacts(b)).map((c) => [c.Banyan_Id__c, c.FirstName, c.LastName, c.Email, c.MailingCity])).toEqual([['1', 'First1', 'Last1', 'u1@example.com', 'Zurich']]);
    // One changelog row: nothing was written back into the legacy row.
    expect(await b.db(b.changelog).count({ n: '*' })).toEqual([{ n: '1' }]);
    // One event per entity, both from the legacy side: the Contact's creation came back as an echo only.
    expect((await events(b, 'user')).map((e) => [e.type, e.origin])).toEqual([['UserChanged', 'legacy']]);
    expect((await events(b, 'address')).map((e) => [e.type, e.origin])).toEqual([['AddressChanged', 'legacy']]);
    const s = await status(b);
    expect(sink(s, 'contacts-out').details).toMatchObject({ written: { created: 1, updated: 0 }, refusedRows: 0 });
    expect(s.sources.find((p) => p.name === 'contacts')!.details).toMatchObject({ events: 1, echoes: 1 });
    expect(s.transforms.find((t) => t.name === 'salesforce-contacts')!.details.dropped).toMatchObject({ echo: 1 });
    expect(sink(s, 'legacy-back').details).toMatchObject({ written: { updated: 0, inserted: 0, deleted: 0 } });
  });

  it('a Salesforce change reaches the legacy row once and comes back nowhere', async () => {
    const b = await run(await bridge());
    await b.db(b.table).insert(user(2));
    await waitFor(async () => (await contacts(b)).length === 1, 'the Contact of legacy user 2');
    await waitFor(() => settled(b), 'the bridge to settle after the insert');
    const [contact] = await contacts(b);
    await b.sf.sobject('Contact').update({ Id: contact!.Id, Email: 'salesforce@example.com' });
    await waitFor(async () => (await b.db(b.table).where({ id: 2 }).first())?.email === 'salesforce@example.com', 'the legacy row to take the Salesforce change');
    await waitFor(() => settled(b), 'the bridge to settle after the Salesforce change');

    // The legacy row changed once (its changelog row is the sink's, tagged), and nothing else.
    expect(await b.db(b.changelog).count({ n: '*' })).toEqual([{ n: '2' }]);
    expect((await events(b, 'user')).map((e) => [e.type, e.origin, e.data.email])).toEqual([
      ['UserChanged', 'legacy', 'u2@example.com'],
      ['UserChanged', 'salesforce', 'salesforce@example.com'],
    ]);
    expect((await events(b, 'address')).map((e) => e.origin)).toEqual(['legacy']);
    expect((await contacts(b)).map((c) => c.Email)).toEqual(['salesforce@example.com']);
    const s = await status(b);
    // Salesforce was written once (the create): its own change was observed, not written back.
    expect(sink(s, 'contacts-out').details).toMatchObject({ written: { created: 1, updated: 0 } });
    expect(sink(s, 'legacy-back').details).toMatchObject({ written: { updated: 1, inserted: 0, deleted: 0 } });
  });

  it("a domain service's UserChanged reaches both once, and neither echoes", async () => {
    const b = await run(await bridge({ rows: [user(3)] }));
    await b.publisher.publish([serviceEvent('UserChanged', 3, { firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example.com' }, Date.now())]);
    await waitFor(async () => (await contacts(b)).length === 1 && (await b.db(b.table).where({ id: 3 }).first())?.email === 'ada@example.com', 'the change in both systems');
    await waitFor(() => settled(b), 'the bridge to settle');

    expect((await contacts(b)).map((c) => [c.Banyan_Id__c, c.FirstName, c.LastName, c.Email])).toEqual([['3', 'Ada', 'Lovelace', 'ada@example.com']]);
    expect(await b.db(b.changelog).count({ n: '*' })).toEqual([{ n: '1' }]);
    expect((await events(b, 'user')).map((e) => [e.type, e.origin])).toEqual([['UserChanged', 'domain']]);
    expect(await events(b, 'address')).toEqual([]);
    const s = await status(b);
    expect(sink(s, 'contacts-out').details).toMatchObject({ written: { created: 1, updated: 0 } });
    expect(sink(s, 'legacy-back').details).toMatchObject({ written: { updated: 1, inserted: 0, deleted: 0 } });
    expect(s.sources.find((p) => p.name === 'contacts')!.details).toMatchObject({ events: 1, echoes: 1 });
  });
});
