import type { ChildProcess } from 'node:child_process';
import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import { createDialect } from '../../src/dialects';
import { subscribe, type Subscription } from '../../src/domain/subscribe';
import type { DomainEvent } from '../../src/domain/event';
import { DomainDecoder } from '../../src/domain/decoder';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { parseConfig, type BanyanConfig } from '../../src/config';
import { catalogOf } from '../../src/transforms/module';
import { freshName, listeningUrl, readAll, runBanyan, spawnBanyan, testKafka, waitFor, withAdmin, writeConfigFile } from '../helpers';

/**
 * `banyan run` with a changelog source on a PostgreSQL users table (user and address columns in one
 * row) and the declarative legacy-users transform, as a user runs it: each test has its own table,
 * topics, domain topic prefix, consumer groups and control topic.
 */
interface Setup {
  config: BanyanConfig;
  file: string;
  db: Knex;
  table: string;
  prefix: string;
  sourceTopic: string;
}

const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function setup(options: { batchSize?: number } = {}): Promise<Setup> {
  const name = freshName('users');
  const table = `public.${name}`;
  const prefix = freshName('domain');
  const sourceTopic = freshName('legacy.pg.users');
  const yaml = `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('pipeline')}
  topics:
    offsets: ${freshName('offsets')}
    deadLetter: ${freshName('dlq')}
    control: ${freshName('control')}
    controlAudit: ${freshName('control-audit')}
    domainPrefix: ${prefix}
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
log: { level: info }
http: { port: 0 }
databases:
  legacy:
    dialect: postgres
    database: postgres
    user: postgres
sources:
  - name: users
    type: changelog
    database: legacy
    table: ${table}
    topic: ${sourceTopic}
    snapshot: false
    batchSize: ${options.batchSize ?? 5000}
    pollIntervalMs: 20
transforms:
  - name: legacy-users
    from: ${sourceTopic}
    format: legacy-changelog
    changeTypes: [user, address]
    events:
      - event: UserChanged
        key: id
        fields: { firstName: first_name, lastName: last_name, email: email }
      - event: AddressChanged
        key: id
        fields: { street: street, city: city, postalCode: postal_code, state: state, country: country }
`;
  const file = writeConfigFile(yaml);
  const config = parseConfig(yaml, file);
  const db = createKnex(config.databases.legacy!);
  await db.raw(`CREATE TABLE ${table} (
    id integer PRIMARY KEY, first_name varchar(50), last_name varchar(50) NOT NULL, email varchar(120),
    street varchar(100), city varchar(60), postal_code varchar(10), state varchar(30), country char(2),
    credit_limit numeric(12,2), updated_at timestamp(3) NOT NULL DEFAULT now())`);
  cleanups.push(async () => {
    await db.raw(`DROP TABLE IF EXISTS ${table} CASCADE`);
    await db.destroy();
  });
  return { config, file, db, table, prefix, sourceTopic };
}

async function install(s: Setup): Promise<void> {
  await migrateChangelogs(s.db, createDialect(s.config.databases.legacy!), [s.table]);
}

function user(id: number): Record<string, unknown> {
  return { id, first_name: `First${id}`, last_name: `Last${id}`, email: `u${id}@example.com`, street: `${id} Main St`, city: 'Zurich', postal_code: '8000', state: 'ZH', country: 'CH' };
}

async function startBanyan(s: Setup): Promise<{ child: ChildProcess; url: string }> {
  const child = spawnBanyan(s.file, ['run'], 'pipe');
  children.push(child);
  const url = await listeningUrl(child);
  return { child, url };
}

interface Status {
  sources: Array<{ records: number }>;
  transforms: Array<{ records: number; state: string; details: { inputs: number; dropped: Record<string, number> } }>;
  changeTypes?: Array<{ type: string; state: string }>;
}

async function status(url: string): Promise<Status> {
  return (await (await fetch(`${url}/status`)).json()) as Status;
}

/** Every record of the source topic mapped and committed by the transform, by the child's /status. */
async function transformCaughtUp(url: string, inputs: number): Promise<boolean> {
  const s = await status(url);
  return s.sources[0]?.records === inputs && s.transforms[0]?.details.inputs === inputs;
}

async function domainEvents(s: Setup, entity: 'user' | 'address'): Promise<DomainEvent[]> {
  const kafka = testKafka(s.config);
  const decoder = new DomainDecoder(s.config.schemaRegistry.url, catalogOf(s.config));
  const messages = await readAll(kafka, `${s.prefix}.${entity}`);
  const events: DomainEvent[] = [];
  for (const m of messages) if (m.value) events.push(await decoder.event(`${s.prefix}.${entity}`, m.value));
  return events;
}

describe('banyan run: a legacy users table into domain events', () => {
  it('one change of user and address columns becomes exactly one UserChanged and one AddressChanged, read through the typed helper', async () => {
    const s = await setup();
    await s.db(s.table).insert(user(1));
    await install(s);
    const { url } = await startBanyan(s);
    await waitFor(async () => (await status(url)).transforms[0]?.state === 'running', 'the transform to run');

    const received: DomainEvent[] = [];
    const options = { kafka: testKafka(s.config), schemaRegistry: s.config.schemaRegistry.url, catalog: catalogOf(s.config) };
    const subscriptions: Subscription[] = [];
    for (const entity of ['user', 'address']) {
      subscriptions.push(await subscribe(options, `${s.prefix}.${entity}`, (event) => void received.push(event as DomainEvent), { groupId: freshName('reader'), fromBeginning: true }));
    }
    cleanups.push(() => Promise.all(subscriptions.map((sub) => sub.stop())));

    await s.db(s.table).where({ id: 1 }).update({ first_name: 'Ada', city: 'Geneva', credit_limit: 10 });
    await waitFor(() => received.length >= 2, () => `two events through subscribe (got ${received.length})`);
    await waitFor(() => transformCaughtUp(url, 1), 'the transform to commit the one change');

    const byType = Object.fromEntries(received.map((e) => [e.type, e]));
    expect(received.map((e) => e.type).sort()).toEqual(['AddressChanged', 'UserChanged']);
    expect(byType.UserChanged).toMatchObject({
      entity: 'user',
      entityId: '1',
      origin: 'legacy',
      changedFields: ['firstName'],
      data: { firstName: 'Ada', lastName: 'Last1', email: 'u1@example.com' },
    });
    expect(byType.UserChanged!.knownFields.sort()).toEqual(['email', 'firstName', 'lastName']);
    expect(byType.AddressChanged).toMatchObject({ entity: 'address', entityId: '1', changedFields: ['city'], data: { city: 'Geneva', country: 'CH' } });
    expect(byType.UserChanged!.correlationId).toBe(byType.AddressChanged!.correlationId);
    // Exactly one of each: nothing else is in the topics once the transform committed the change.
    expect((await domainEvents(s, 'user')).map((e) => e.type)).toEqual(['UserChanged']);
    expect((await domainEvents(s, 'address')).map((e) => e.type)).toEqual(['AddressChanged']);
  });

  it('an echo (a change written under Banyan’s origin tag) yields no event and is counted', async () => {
    const s = await setup();
    await s.db(s.table).insert([user(1), user(2)]);
    await install(s);
    const { url } = await startBanyan(s);
    await s.db.transaction(async (tx) => {
      await tx.raw(`SELECT set_config('banyan.origin', ?, true)`, [s.config.originTag]);
      await tx(s.table).where({ id: 1 }).update({ email: 'echo@example.com', city: 'Basel' });
    });
    // A change after the echo, so the test knows when the transform has seen both.
    await s.db(s.table).where({ id: 2 }).update({ email: 'real@example.com' });
    await waitFor(() => transformCaughtUp(url, 2), 'the transform to commit both changes');
    expect((await status(url)).transforms[0]!.details.dropped).toMatchObject({ echo: 1 });
    const users = await domainEvents(s, 'user');
    expect(users.map((e) => [e.entityId, e.data.email])).toEqual([['2', 'real@example.com']]);
    expect(await domainEvents(s, 'address')).toEqual([]);
  });

  it('a lifecycle change made by another process is obeyed: new-owned user changes from legacy are reported, not turned into events', async () => {
    const s = await setup();
    await s.db(s.table).insert(user(1));
    await install(s);
    const { url } = await startBanyan(s);
    await waitFor(async () => (await status(url)).changeTypes?.find((t) => t.type === 'user')?.state === 'legacy-owned', 'the change types in /status');

    const set = await runBanyan(s.file, ['changetypes', 'set', 'user', 'dual', '--why', 'test: both write']);
    expect(set.code).toBe(0);
    const set2 = await runBanyan(s.file, ['changetypes', 'set', 'user', 'new-owned', '--why', 'test: the new system owns users']);
    expect(set2).toMatchObject({ code: 0 });
    // The running process sees it on its own (it follows the control topic): generous bound, no timing claim.
    await waitFor(async () => (await status(url)).changeTypes?.find((t) => t.type === 'user')?.state === 'new-owned', 'banyan run to see user new-owned');

    await s.db(s.table).where({ id: 1 }).update({ email: 'legacy@example.com', city: 'Bern' });
    await waitFor(() => transformCaughtUp(url, 1), 'the transform to commit the change');
    expect((await status(url)).transforms[0]!.details.dropped).toMatchObject({ 'lifecycle:new-owned': 1 });
    expect(await domainEvents(s, 'user')).toEqual([]);
    expect((await domainEvents(s, 'address')).map((e) => [e.type, e.data.city])).toEqual([['AddressChanged', 'Bern']]);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('banyan_change_type_state{type="user",state="new-owned"} 1');
    expect(metrics).toContain('banyan_transform_dropped_total{transform="legacy-users",reason="lifecycle:new-owned"} 1');
  });
});

describe('banyan run with a bad mapping', () => {
  it('fails at start naming the transform, the field and the line, and starts nothing', async () => {
    const s = await setup();
    await install(s);
    const text = (await import('node:fs')).readFileSync(s.file, 'utf8');
    // A column the table does not have, and an event field UserChanged does not have.
    const bad = text.replace('fields: { firstName: first_name, lastName: last_name, email: email }', 'fields: { firstName: first_name, lastName: last_name, email: emial, nickname: first_name }');
    const file = writeConfigFile(bad);
    const lineOf = (needle: string) => bad.split('\n').findIndex((l) => l.includes(needle)) + 1;
    const { code, stderr } = await runBanyan(file, ['run']);
    expect(code).toBe(2);
    const problems = stderr.split('\n').filter((l) => l.trim().startsWith('- '));
    expect(problems.length).toBeGreaterThanOrEqual(2);
    expect(stderr).toContain('transform "legacy-users"');
    expect(stderr).toMatch(new RegExp(`transforms\\[0\\]\\.events\\[0\\]\\.fields\\.email\\.column \\(line ${lineOf('email: emial')}\\)[^\\n]*emial`));
    expect(stderr).toMatch(new RegExp(`transforms\\[0\\]\\.events\\[0\\]\\.fields\\.nickname \\(line ${lineOf('nickname')}\\)`));
    // Nothing ran: the source's topic was never made.
    expect(await withAdmin(testKafka(s.config), async (admin) => (await admin.listTopics()).includes(s.sourceTopic))).toBe(false);
  });
});

describe('banyan run killed with SIGKILL mid-stream', () => {
  const ROWS = 1500;
  const KILL_AFTER = 300;

  it('yields every event exactly once after a restart (read_committed)', async () => {
    const s = await setup({ batchSize: 20 });
    await install(s);
    const first = await startBanyan(s);
    for (let i = 0; i < ROWS; i += 100) await s.db(s.table).insert(Array.from({ length: 100 }, (_, j) => user(i + j)));
    // The transform is behind the source (batches of 20); kill it once it has written some events.
    await waitFor(async () => ((await status(first.url)).transforms[0]?.records ?? 0) >= KILL_AFTER, `${KILL_AFTER} events committed by the transform`);
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    // As its successor would, fence the killed instance (the source's transactional id and the
    // transform's, one per input partition): its open transactions are aborted, so the topics'
    // end offsets are final and readAll counts exactly what it committed.
    const kafka = testKafka(s.config);
    const partitions = (await withAdmin(kafka, (admin) => admin.fetchTopicOffsets(s.sourceTopic))).map((p) => p.partition);
    const ids = [`${s.config.kafka.clientId}.source.users`, ...partitions.map((p) => `${s.config.kafka.clientId}.transform.legacy-users.${s.sourceTopic}.${p}`)];
    for (const transactionalId of ids) {
      const successor = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
      await successor.connect();
      await successor.disconnect();
    }
    const before = (await domainEvents(s, 'user')).length;
    expect(before).toBeGreaterThanOrEqual(KILL_AFTER / 2);
    expect(before).toBeLessThan(ROWS);

    await startBanyan(s);
    // The restarted source resumes from its committed offset; the transform from its own: together
    // every change of the table reaches the domain topics. Done when the transform's group has
    // committed the end of every input partition.
    const groupId = `${s.config.kafka.clientId}.transform.legacy-users`;
    await waitFor(async () => {
      const inputs = await readAll(kafka, s.sourceTopic);
      if (inputs.length < ROWS) return false;
      // The next offset after each partition's last change (the source's commit markers take offsets too).
      const next = new Map<number, bigint>();
      for (const m of inputs) next.set(m.partition, BigInt(m.offset) + 1n);
      return withAdmin(kafka, async (admin) => {
        const [committed] = await admin.fetchOffsets({ groupId, topics: [s.sourceTopic] });
        return [...next].every(([partition, offset]) => BigInt(committed!.partitions.find((p) => p.partition === partition)?.offset ?? '-1') >= offset);
      });
    }, 'the restarted transform to commit every input', 120_000);

    for (const entity of ['user', 'address'] as const) {
      const events = await domainEvents(s, entity);
      // On failure, the repeated entities' events say where each came from (input partition and offset).
      const byId = new Map<string, DomainEvent[]>();
      for (const e of events) byId.set(e.entityId, [...(byId.get(e.entityId) ?? []), e]);
      const repeats = [...byId.values()].filter((l) => l.length > 1).slice(0, 5).map((l) => l.map((e) => ({ id: e.entityId, eventId: e.eventId, causation: e.causation })));
      expect(events, `${entity}: repeated entities ${JSON.stringify(repeats)}`).toHaveLength(ROWS);
      expect(new Set(events.map((e) => e.entityId)).size).toBe(ROWS);
      expect(new Set(events.map((e) => e.eventId)).size).toBe(ROWS);
    }
  }, 240_000);
});
