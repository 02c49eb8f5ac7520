import type { ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import type { Connection } from 'jsforce';
import type { Knex } from 'knex';
import { afterEach } from 'vitest';
import { parseConfig, type BanyanConfig } from '../src/config';
import { createDialect } from '../src/dialects';
import { DomainDecoder } from '../src/domain/decoder';
import type { DomainEvent } from '../src/domain/event';
import { createPublisher, type Publisher } from '../src/domain/publish';
import { migrateChangelogs } from '../src/import/changelog/migrate';
import { catalogOf } from '../src/transforms/module';
import { startEmulator, type Emulator } from '../tools/salesforce-emulator/index.js';
import { freshName, listeningUrl, loginToEmulator, readAll, spawnBanyan, testKafka, withAdmin, writeConfigFile } from './helpers';
import { LEGACY_DATABASES } from './legacy-databases';

/**
 * The whole bridge in one `banyan run`, for the bridge tests: a PostgreSQL legacy users table
 * (changelog source, the legacy-users transform, the legacy sink), the emulator's Contacts (CDC
 * source on a channel enriched with Banyan_Id__c, the salesforce-contact transform, the Salesforce
 * sink), real Kafka and registry. "Settled" is observed, never waited out: every consumer group
 * has committed the end of its inputs, the changelog source has published every changelog row and
 * the CDC source has read the emulator's last change event.
 */

const postgres = LEGACY_DATABASES.find((d) => d.name === 'postgres')!;

export interface Bridge {
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

export const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

export async function bridge(options: { states?: { user?: string; address?: string }; rows?: Array<Record<string, unknown>>; sink?: string } = {}): Promise<Omit<Bridge, 'url' | 'child'>> {
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
  return { config, file, db: prepared.db, table: prepared.table, changelog: postgres.changelog(prepared.db, prepared.table) as string, prefix, emulator, sf: await loginToEmulator(emulator), publisher };
}

export async function run(b: Omit<Bridge, 'url' | 'child'>): Promise<Bridge> {
  const child = spawnBanyan(b.file, ['run'], 'pipe');
  children.push(child);
  // BRIDGE_TEST_LOG=<file>: the process's log appended there, to read after a failure.
  const log = process.env.BRIDGE_TEST_LOG;
  if (log) child.stdout!.on('data', (chunk: Buffer) => appendFileSync(log, chunk));
  return { ...b, child, url: await listeningUrl(child) };
}

export interface PipelineStatus {
  name: string;
  kind: string;
  records: number;
  deadLetters: number;
  details: Record<string, unknown> & { groupId?: string; inputs?: number; dropped?: Record<string, number> };
}
export interface Status {
  sources: PipelineStatus[];
  transforms: PipelineStatus[];
  sinks: PipelineStatus[];
}

export async function status(b: Bridge): Promise<Status> {
  return (await (await fetch(`${b.url}/status`)).json()) as Status;
}

/**
 * Nothing is in flight: the CDC source has read the emulator's last change event, the changelog
 * source has read every changelog row, and every transform and sink group has committed the end of
 * each of its input partitions.
 */
export async function settled(b: Bridge): Promise<boolean> {
  const s = await status(b);
  const lastEvent = b.emulator.admin.changeEvents().at(-1)?.replayId ?? null;
  if (lastEvent !== null && (await cdcReplayId(b)) !== lastEvent) return false;
  // Each changelog row becomes one record of the legacy topic (an echo too, flagged).
  const [{ n }] = (await b.db(b.changelog).count({ n: '*' })) as [{ n: string | number }];
  if ((await readAll(testKafka(b.config), legacyTopic(b))).length !== Number(n)) return false;
  const kafka = testKafka(b.config);
  return withAdmin(kafka, async (admin) => {
    for (const p of [...s.transforms, ...s.sinks]) {
      const groupId = p.details.groupId!;
      // Its input topics, from the partitions it owns (`topic/partition`): none owned yet is not settled.
      const owned = (p.details.partitions as string[] | undefined) ?? [];
      if (owned.length === 0) return false;
      const inputs = [...new Set(owned.map((key) => key.slice(0, key.lastIndexOf('/'))))];
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

/** The CDC source's committed replayId, as the offsets topic holds it (what a restart resumes from). */
async function cdcReplayId(b: Bridge): Promise<number | null> {
  let replayId: number | null = null;
  for (const m of await readAll(testKafka(b.config), b.config.kafka.topics.offsets)) {
    const key = m.key ? (JSON.parse(m.key.toString()) as unknown[]) : [];
    if (key[0] === 'contacts' && m.value) replayId = (JSON.parse(m.value.toString()) as { replayId?: number }).replayId ?? replayId;
  }
  return replayId;
}

export function legacyTopic(b: Bridge): string {
  const source = b.config.sources.find((x) => x.name === 'users')!;
  return source.type === 'changelog' ? source.topic! : '';
}

/** Whether what is left of a partition after `from` is transaction markers only (a consumer never commits past them). */
async function onlyMarkersFrom(kafka: ReturnType<typeof testKafka>, topic: string, partition: number, from: bigint): Promise<boolean> {
  const messages = (await readAll(kafka, topic)).filter((m) => m.partition === partition && BigInt(m.offset) >= from);
  return messages.length === 0;
}

export async function events(b: Bridge, entity: 'user' | 'address'): Promise<DomainEvent[]> {
  const decoder = new DomainDecoder(b.config.schemaRegistry.url, catalogOf(b.config));
  const topic = `${b.prefix}.${entity}`;
  const out: DomainEvent[] = [];
  for (const m of await readAll(testKafka(b.config), topic)) if (m.value) out.push(await decoder.event(topic, m.value));
  return out;
}

export interface Contact {
  Id: string;
  FirstName: string | null;
  LastName: string;
  Email: string | null;
  MailingCity: string | null;
  Banyan_Id__c: string | null;
}

export async function contacts(b: Bridge): Promise<Contact[]> {
  const result = await b.sf.query<Contact>('SELECT Id, FirstName, LastName, Email, MailingCity, Banyan_Id__c FROM Contact');
  return result.records;
}

export function sink(s: Status, name: string): PipelineStatus {
  return s.sinks.find((p) => p.name === name)!;
}
