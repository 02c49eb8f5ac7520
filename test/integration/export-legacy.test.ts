import type { ChildProcess } from 'node:child_process';
import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig, type BanyanConfig } from '../../src/config';
import { createDialect } from '../../src/dialects';
import { DomainDecoder } from '../../src/domain/decoder';
import type { DomainEvent } from '../../src/domain/event';
import { createPublisher, type Publisher } from '../../src/domain/publish';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { catalogOf } from '../../src/transforms/module';
import { freshName, listeningUrl, readAll, runBanyan, spawnBanyan, testKafka, textHeaders, waitFor, writeConfigFile } from '../helpers';
import { LEGACY_DATABASES as DATABASES, serviceEvent, user, type LegacyDatabase as Db } from '../legacy-databases';

/**
 * The legacy sink inside `banyan run`, as a user runs it: a legacy users table with its changelog
 * source, the declarative legacy-users transform and the legacy sink that writes its mapping back,
 * on PostgreSQL and on MariaDB, with real Kafka and registry. Each test has its own table (or
 * database), topics, groups and control topic; counts are exact on every side: rows, changelog
 * rows, domain events, the sink's own account.
 */

interface Setup {
  dbKind: Db;
  config: BanyanConfig;
  file: string;
  db: Knex;
  table: string;
  changelog: string | Knex.Raw;
  prefix: string;
  publisher: Publisher;
  yamlWith(sinkName: string, states?: { user?: string; address?: string }): string;
}

const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** A fresh table holding `rows` before its changelog is installed (they make no change), and the config. */
async function setup(dbKind: Db, rows: Array<Record<string, unknown>>, states: { user?: string; address?: string } = {}): Promise<Setup> {
  const prepared = await dbKind.prepare();
  cleanups.push(prepared.cleanup);
  const prefix = freshName('domain');
  const sourceTopic = freshName('legacy.users');
  const names = {
    clientId: freshName('sink'),
    offsets: freshName('offsets'),
    dlq: freshName('dlq'),
    control: freshName('control'),
    audit: freshName('control-audit'),
  };
  const yamlWith = (sinkName: string, st = states) => `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${names.clientId}
  topics:
    offsets: ${names.offsets}
    deadLetter: ${names.dlq}
    control: ${names.control}
    controlAudit: ${names.audit}
    domainPrefix: ${prefix}
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
log: { level: info }
http: { port: 0 }
${prepared.yaml}
changeTypes:
  user: { initial: ${st.user ?? 'dual'} }
  address: { initial: ${st.address ?? 'dual'} }
sources:
  - name: users
    type: changelog
    database: legacy
    table: ${prepared.table}
    topic: ${sourceTopic}
    snapshot: false
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
sinks:
  - name: ${sinkName}
    type: legacy
    mapping: legacy-users
    missingRow: { waitMs: 0 }
`;
  const yaml = yamlWith('users-back');
  const file = writeConfigFile(yaml);
  const config = parseConfig(yaml, file);
  await prepared.db.raw(dbKind.ddl(prepared.table));
  if (rows.length) await prepared.db(prepared.table).insert(rows);
  await migrateChangelogs(prepared.db, createDialect(config.databases.legacy!), [prepared.table]);
  const publisher = await createPublisher({ kafka: testKafka(config), schemaRegistry: config.schemaRegistry.url, catalog: catalogOf(config) }, freshName('service'));
  cleanups.push(() => publisher.close());
  return { dbKind, config, file, db: prepared.db, table: prepared.table, changelog: dbKind.changelog(prepared.db, prepared.table), prefix, publisher, yamlWith };
}

async function start(s: Setup, file = s.file): Promise<{ child: ChildProcess; url: string }> {
  const child = spawnBanyan(file, ['run'], 'pipe');
  children.push(child);
  const url = await listeningUrl(child);
  return { child, url };
}

interface SinkStatus {
  name: string;
  state: string;
  deadLetters: number;
  transactions: number;
  details: {
    inputs: number;
    written: { updated: number; inserted: number; deleted: number };
    noops: number;
    stale: number;
    observed: number;
    reported: Record<string, number>;
    dropped: Record<string, number>;
    refusedRows: number;
    positionsReset: number;
  };
}
interface Status {
  sources: Array<{ records: number }>;
  transforms: Array<{ records: number; details: { inputs: number; dropped: Record<string, number> } }>;
  sinks: SinkStatus[];
}

async function status(url: string): Promise<Status> {
  return (await (await fetch(`${url}/status`)).json()) as Status;
}

async function sink(url: string): Promise<SinkStatus> {
  return (await status(url)).sinks[0]!;
}

/** The records in the domain topics (a deleted event's tombstone included). */
async function domainRecords(s: Setup): Promise<number> {
  const kafka = testKafka(s.config);
  return (await readAll(kafka, `${s.prefix}.user`)).length + (await readAll(kafka, `${s.prefix}.address`)).length;
}

async function domainEvents(s: Setup, entity: 'user' | 'address'): Promise<DomainEvent[]> {
  const decoder = new DomainDecoder(s.config.schemaRegistry.url, catalogOf(s.config));
  const events: DomainEvent[] = [];
  for (const m of await readAll(testKafka(s.config), `${s.prefix}.${entity}`)) if (m.value) events.push(await decoder.event(`${s.prefix}.${entity}`, m.value));
  return events;
}

async function changelogRows(s: Setup): Promise<Array<{ origin: string | null; op: string }>> {
  return s.db(s.changelog).select('origin', 'op').orderBy(s.dbKind.changelogOrder);
}

async function row(s: Setup, id: number): Promise<Record<string, unknown>> {
  return (await s.db(s.table).where({ id }).first()) as Record<string, unknown>;
}

async function guard(s: Setup, entity: string, id: number, field: string): Promise<{ version_ms: string | number; origin: string; written: unknown } | undefined> {
  return s.db(s.dbKind.beside(s.table, 'banyan_guard')).where({ entity, entity_id: String(id), field }).first();
}

for (const dbKind of DATABASES) {
  describe(`legacy sink on ${dbKind.name}`, () => {
    it('a UserChanged from a domain service updates the legacy row once; the changelog row it causes is an echo and makes no event', async () => {
      const s = await setup(dbKind, [user(1)]);
      const { url } = await start(s);
      await waitFor(async () => (await sink(url))?.state === 'running', 'the sink to run');

      await s.publisher.publish([serviceEvent('UserChanged', 1, { email: 'ada@new.example' }, Date.now())]);
      await waitFor(async () => (await sink(url)).details.inputs === 1, 'the sink to handle the event');
      expect(await row(s, 1)).toMatchObject({ email: 'ada@new.example', first_name: 'First1', city: 'Zurich' });
      expect((await sink(url)).details.written).toEqual({ updated: 1, inserted: 0, deleted: 0 });

      // The write's changelog row carries the origin tag; the importer and transform drop it as an echo.
      expect(await changelogRows(s)).toEqual([{ origin: s.config.originTag, op: 'U' }]);
      await waitFor(async () => (await status(url)).transforms[0]?.details.inputs === 1, 'the transform to see the echo');
      expect((await status(url)).transforms[0]!.details.dropped).toEqual({ echo: 1 });
      expect((await domainEvents(s, 'user')).map((e) => [e.origin, e.data.email])).toEqual([['domain', 'ada@new.example']]);
      expect(await domainEvents(s, 'address')).toEqual([]);
      const g = await guard(s, 'user', 1, 'email');
      expect(g).toMatchObject({ origin: 'domain' });
      expect(Boolean(Number(g!.written) || g!.written === true)).toBe(true);
    });

    it('a UserDeleted from a domain service deletes the legacy row once; the delete is an echo and makes no event', async () => {
      const s = await setup(dbKind, [user(1), user(2)]);
      const { url } = await start(s);
      await waitFor(async () => (await sink(url))?.state === 'running', 'the sink to run');

      await s.publisher.publish([serviceEvent('UserDeleted', 2, {}, Date.now())]);
      await waitFor(async () => (await sink(url)).details.inputs === 2, 'the sink to handle the event and its tombstone');
      expect(await s.db(s.table).pluck('id')).toEqual([1]);
      expect((await sink(url)).details.written).toEqual({ updated: 0, inserted: 0, deleted: 1 });
      expect((await sink(url)).details.dropped).toEqual({ tombstone: 1 });
      expect(await changelogRows(s)).toEqual([{ origin: s.config.originTag, op: 'D' }]);
      await waitFor(async () => (await status(url)).transforms[0]?.details.inputs === 2, 'the transform to see the echo (the delete and its tombstone)');
      expect((await status(url)).transforms[0]!.details.dropped).toMatchObject({ echo: 1 });
      // Only the service's own event and its tombstone: the delete made no event of its own.
      expect(await domainRecords(s)).toBe(2);
      // A late UserChanged older than the delete does not bring the row back.
      await s.publisher.publish([serviceEvent('UserChanged', 2, { email: 'late@example.com' }, Date.now() - 60_000)]);
      await waitFor(async () => (await sink(url)).details.inputs === 3, 'the sink to handle the late event');
      expect(await s.db(s.table).pluck('id')).toEqual([1]);
      expect((await sink(url)).details.stale).toBe(1);
    });

    it('banyan doctor checks the sink: its table fits the mapping; a column the table lacks fails it by name, and banyan run will not start', async () => {
      const s = await setup(dbKind, []);
      const good = await runBanyan(s.file, ['doctor', '--json']);
      const row = (out: string) => (JSON.parse(out) as { checks: Array<{ name: string; ok: boolean; detail: string }> }).checks.find((c) => c.name === 'sink:users-back');
      expect(row(good.stdout)).toMatchObject({ ok: true, detail: expect.stringContaining('created at the sink') });
      await s.db.raw(`ALTER TABLE ${s.table} DROP COLUMN city`);
      const bad = await runBanyan(s.file, ['doctor', '--json']);
      expect(bad.code).not.toBe(0);
      expect(row(bad.stdout)).toMatchObject({ ok: false, detail: expect.stringContaining('AddressChanged.city: no column city') });
      // And banyan run refuses to start, naming the sink and the line.
      const run = await runBanyan(s.file, ['run']);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/sinks\[0\]\.mapping \(line \d+\)[^\n]*sink "users-back"[^\n]*AddressChanged\.city: no column city/);
    });

    it('a legacy change becomes its domain events and is not written back (one changelog row)', async () => {
      const s = await setup(dbKind, [user(1)]);
      const { url } = await start(s);
      await waitFor(async () => (await sink(url))?.state === 'running', 'the sink to run');

      await s.db(s.table).where({ id: 1 }).update({ email: 'legacy@example.com', city: 'Bern' });
      await waitFor(async () => (await sink(url)).details.inputs === 2, 'the sink to see UserChanged and AddressChanged');
      const st = await sink(url);
      expect(st.details.written).toEqual({ updated: 0, inserted: 0, deleted: 0 });
      expect(st.details.observed).toBe(2);
      expect(await changelogRows(s)).toEqual([{ origin: null, op: 'U' }]);
      expect(await domainRecords(s)).toBe(2);
      expect(await guard(s, 'user', 1, 'email')).toMatchObject({ origin: 'legacy' });
      expect(await guard(s, 'address', 1, 'city')).toMatchObject({ origin: 'legacy' });
    });

    it('dual: the same field changed on both sides within a second converges to the later commit time; a stale event changes nothing; a replay from the start writes nothing', async () => {
      const s = await setup(dbKind, [user(1)]);
      const { url, child } = await start(s);
      await waitFor(async () => (await sink(url))?.state === 'running', 'the sink to run');

      await s.db(s.table).where({ id: 1 }).update({ email: 'legacy@example.com' });
      await waitFor(async () => (await sink(url)).details.inputs === 1, 'the sink to observe the legacy change');
      const legacyTime = Number((await guard(s, 'user', 1, 'email'))!.version_ms);
      // The domain service changed the same field 400 ms after the legacy side: it wins.
      await s.publisher.publish([serviceEvent('UserChanged', 1, { email: 'service@example.com' }, legacyTime + 400)]);
      await waitFor(async () => (await sink(url)).details.inputs === 2, 'the sink to handle the service event');
      expect((await row(s, 1)).email).toBe('service@example.com');
      expect(await guard(s, 'user', 1, 'email')).toMatchObject({ origin: 'domain', version_ms: expect.anything() });
      expect(Number((await guard(s, 'user', 1, 'email'))!.version_ms)).toBe(legacyTime + 400);

      // An event older than what the row holds (600 ms before the legacy change) changes nothing.
      await s.publisher.publish([serviceEvent('UserChanged', 1, { email: 'stale@example.com' }, legacyTime - 600)]);
      await waitFor(async () => (await sink(url)).details.inputs === 3, 'the sink to handle the stale event');
      expect((await row(s, 1)).email).toBe('service@example.com');
      expect((await sink(url)).details.stale).toBe(1);
      expect(Number((await guard(s, 'user', 1, 'email'))!.version_ms)).toBe(legacyTime + 400);
      expect((await sink(url)).details.written.updated).toBe(1);
      expect(await changelogRows(s)).toEqual([
        { origin: null, op: 'U' },
        { origin: s.config.originTag, op: 'U' },
      ]);

      // The domain topics replayed from their start by a sink with no position: zero writes.
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      const replay = writeConfigFile(s.yamlWith('users-replay'));
      const second = await start(s, replay);
      await waitFor(async () => (await sink(second.url))?.details.inputs === 3, 'the replaying sink to read the three events');
      const st = await sink(second.url);
      expect(st.details.written).toEqual({ updated: 0, inserted: 0, deleted: 0 });
      expect(st.details.stale).toBe(3);
      expect(await changelogRows(s)).toHaveLength(2);
      expect((await row(s, 1)).email).toBe('service@example.com');
    });

    it('dual, the other order: a domain change reaches the row first, then a later legacy change of the same field wins and stays', async () => {
      const s = await setup(dbKind, [user(1)]);
      const { url } = await start(s);
      await waitFor(async () => (await sink(url))?.state === 'running', 'the sink to run');
      await s.publisher.publish([serviceEvent('UserChanged', 1, { email: 'service@example.com' }, Date.now())]);
      await waitFor(async () => (await sink(url)).details.inputs === 1, 'the sink to write the service event');
      const serviceTime = Number((await guard(s, 'user', 1, 'email'))!.version_ms);
      // The legacy application changes the same field after that, within a second of it.
      await s.db(s.table).where({ id: 1 }).update({ email: 'legacy@example.com' });
      await waitFor(async () => (await sink(url)).details.inputs === 2, 'the sink to see the legacy change');
      const g = (await guard(s, 'user', 1, 'email'))!;
      expect(Number(g.version_ms)).toBeGreaterThan(serviceTime);
      expect(g.origin).toBe('legacy');
      expect((await row(s, 1)).email).toBe('legacy@example.com');
      // The legacy value newer than Banyan's write is "written back": the row holds it, so nothing is written.
      expect(await changelogRows(s)).toEqual([
        { origin: s.config.originTag, op: 'U' },
        { origin: null, op: 'U' },
      ]);
      expect((await sink(url)).details).toMatchObject({ written: { updated: 1, inserted: 0, deleted: 0 }, noops: 1 });
    });

    it('legacy-owned reports the new system’s changes instead of writing them; new-owned writes them and reports the legacy side’s', async () => {
      const s = await setup(dbKind, [user(1)], { user: 'legacy-owned', address: 'new-owned' });
      const { url } = await start(s);
      await waitFor(async () => (await sink(url))?.state === 'running', 'the sink to run');

      const now = Date.now();
      await s.publisher.publish([serviceEvent('UserChanged', 1, { email: 'service@example.com' }, now), serviceEvent('AddressChanged', 1, { city: 'Lugano' }, now)]);
      await waitFor(async () => (await sink(url)).details.inputs === 2, 'the sink to handle both events');
      let st = await sink(url);
      expect(st.details.reported).toEqual({ 'lifecycle:legacy-owned': 1 });
      expect(st.details.written.updated).toBe(1);
      expect(await row(s, 1)).toMatchObject({ email: 'u1@example.com', city: 'Lugano' });
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toContain('banyan_sink_reported_total{sink="users-back",reason="lifecycle:legacy-owned"} 1');
      expect(metrics).toContain('banyan_sink_rows_written_total{sink="users-back",operation="updated"} 1');
      expect(metrics).toContain('banyan_sink_inputs_total{sink="users-back"} 2');

      // A legacy-side write of a new-owned type: reported by the transform (no event), never written back.
      await s.db(s.table).where({ id: 1 }).update({ city: 'Chur' });
      await waitFor(async () => (await status(url)).transforms[0]?.details.inputs === 2, 'the transform to see the echo and the legacy change');
      const transform = (await status(url)).transforms[0]!;
      expect(transform.details.dropped).toEqual({ echo: 1, 'lifecycle:new-owned': 1 });
      st = await sink(url);
      expect(st.details.written.updated).toBe(1);
      expect((await row(s, 1)).city).toBe('Chur');
      expect(await changelogRows(s)).toEqual([
        { origin: s.config.originTag, op: 'U' },
        { origin: null, op: 'U' },
      ]);
    });

    it('a value the column refuses is dead-lettered with the database’s error; the rest of the batch lands', async () => {
      // 30 users over 3 partitions: the poison row shares its batch with others, so the statement
      // that holds it is refused and its rows are written one by one.
      const IDS = Array.from({ length: 30 }, (_, i) => i + 1);
      const s = await setup(dbKind, IDS.map(user));
      const { url } = await start(s);
      await waitFor(async () => (await sink(url))?.state === 'running', 'the sink to run');
      const now = Date.now();
      const emailOf = (id: number) => (id === 2 ? `${'x'.repeat(60)}@too.long` : `new${id}@example.com`);
      await s.publisher.publish(IDS.map((id) => serviceEvent('UserChanged', id, { email: emailOf(id) }, now)));
      await waitFor(async () => (await sink(url)).details.inputs === IDS.length, 'the sink to handle the 30 events');
      for (const id of IDS) expect((await row(s, id)).email).toBe(id === 2 ? 'u2@example.com' : emailOf(id));
      const st = await sink(url);
      expect(st.details.written.updated).toBe(IDS.length - 1);
      // A transaction per input batch, far fewer than events: the refused row was in a multi-row
      // statement, found alone by the row-by-row retry, and the other rows of that statement landed.
      expect(st.transactions).toBeLessThan(IDS.length / 3);
      expect(st.details.refusedRows).toBe(1);
      expect(st.deadLetters).toBe(1);
      const letters = await readAll(testKafka(s.config), s.config.kafka.topics.deadLetter);
      expect(letters).toHaveLength(1);
      const headers = textHeaders(letters[0]!);
      // The database's own code: PostgreSQL's SQLSTATE 22001, MariaDB's ER_DATA_TOO_LONG, SQL Server's error 2628.
      expect(headers['banyan.dlq.code']).toBe({ postgres: '22001', mariadb: 'ER_DATA_TOO_LONG', mssql: '2628' }[dbKind.name]);
      expect(headers['banyan.dlq.reason']).toMatch(/refused the row.*(too long|Data too long)/i);
      expect(headers['banyan.dlq.input.topic']).toBe(`${s.prefix}.user`);
      // The guard holds nothing for the refused field: a later good value still lands.
      expect(await guard(s, 'user', 2, 'email')).toBeUndefined();
    });

    it('a stored position past the end of its topic (the topic made again, or another Kafka) is said and the topic read from its start; the guard keeps what was applied from being written again', async () => {
      const s = await setup(dbKind, [user(1), user(2)]);
      const first = await start(s);
      await waitFor(async () => (await sink(first.url))?.state === 'running', 'the sink to run');
      const base = Date.now();
      await s.publisher.publish([serviceEvent('UserChanged', 1, { email: 'one@new.example' }, base)]);
      await waitFor(async () => (await sink(first.url)).details.inputs === 1, 'the sink to write the first event');
      first.child.kill('SIGTERM');
      await new Promise((resolve) => first.child.once('exit', resolve));
      // The database keeps a position the topic never reached: as when the domain topic is deleted
      // and made again, or Kafka is replaced, while the legacy database stays.
      const offsets = s.dbKind.beside(s.table, 'banyan_sink_offsets');
      expect(await s.db(offsets).where({ sink: 'users-back' }).update({ next_offset: 1000 })).toBe(1);

      const second = await start(s);
      // The partition is read again from its start although no new record arrives in it.
      await waitFor(async () => (await sink(second.url))?.details.inputs === 1, 'the sink to read the topic again from its start');
      expect((await sink(second.url)).details).toMatchObject({ positionsReset: 1, written: { updated: 0, inserted: 0, deleted: 0 } });
      // The stale position is gone from the database too (offsets otherwise never move back): the
      // next start does not reset again, nor skip what a refilled topic holds below it.
      const rows = (await s.db(offsets).where({ sink: 'users-back' }).select('next_offset')) as Array<{ next_offset: string | number }>;
      expect(rows.map((r) => Number(r.next_offset))).toEqual([1]);
      await s.publisher.publish([serviceEvent('UserChanged', 2, { email: 'two@new.example' }, base + 1)]);
      await waitFor(async () => (await sink(second.url)).details.inputs === 2, 'the sink to handle the new event');
      const second_ = await sink(second.url);
      expect(second_.details.positionsReset).toBe(1);
      expect(second_.details.written).toEqual({ updated: 1, inserted: 0, deleted: 0 });
      expect(await row(s, 1)).toMatchObject({ email: 'one@new.example' });
      expect(await row(s, 2)).toMatchObject({ email: 'two@new.example' });
      // One tagged write per event over both runs: the replayed one was not written again.
      expect(await changelogRows(s)).toEqual([
        { origin: s.config.originTag, op: 'U' },
        { origin: s.config.originTag, op: 'U' },
      ]);
    });

    it('killed with SIGKILL mid-stream and restarted: every row ends with its newest values, guard and row agree', async () => {
      const IDS = 300;
      const ROUNDS = 4;
      const s = await setup(dbKind, Array.from({ length: IDS }, (_, i) => user(i + 1)));
      // Started first: the domain topics exist before the service publishes.
      const first = await start(s);
      await waitFor(async () => (await sink(first.url))?.state === 'running', 'the sink to run');
      const base = Date.now();
      // Each round changes every user's email and city again; later rounds have later commit times.
      for (let round = 0; round < ROUNDS; round++) {
        const events: DomainEvent[] = [];
        for (let id = 1; id <= IDS; id++) {
          events.push(serviceEvent('UserChanged', id, { email: `r${round}.u${id}@example.com` }, base + round * 1000 + id));
          events.push(serviceEvent('AddressChanged', id, { city: `City ${round}.${id}` }, base + round * 1000 + id));
        }
        await s.publisher.publish(events);
      }
      await waitFor(async () => ((await sink(first.url))?.details.inputs ?? 0) >= 200, 'the sink to write some batches');
      first.child.kill('SIGKILL');
      await new Promise((resolve) => first.child.once('exit', resolve));
      const second = await start(s);
      await waitFor(async () => {
        const rows = await s.db(s.table).where('email', 'like', `r${ROUNDS - 1}.%`).count({ n: '*' });
        const cities = await s.db(s.table).where('city', 'like', `City ${ROUNDS - 1}.%`).count({ n: '*' });
        return Number(rows[0]!.n) === IDS && Number(cities[0]!.n) === IDS;
      }, 'every row to hold the last round', 120_000);
      for (const id of [1, 77, IDS]) {
        expect(await row(s, id)).toMatchObject({ email: `r${ROUNDS - 1}.u${id}@example.com`, city: `City ${ROUNDS - 1}.${id}` });
        expect(Number((await guard(s, 'user', id, 'email'))!.version_ms)).toBe(base + (ROUNDS - 1) * 1000 + id);
        expect(Number((await guard(s, 'address', id, 'city'))!.version_ms)).toBe(base + (ROUNDS - 1) * 1000 + id);
      }
      // Guard and rows agree for every user: the guard's version is the last round's wherever the row holds it.
      const guards = await s.db(s.dbKind.beside(s.table, 'banyan_guard')).where({ field: 'email', entity: 'user' }).select('entity_id', 'version_ms');
      expect(guards).toHaveLength(IDS);
      expect(guards.every((g) => Number(g.version_ms) === base + (ROUNDS - 1) * 1000 + Number(g.entity_id))).toBe(true);
      // No write is made twice: a row takes at most one write per round per event type, tagged.
      const writes = await changelogRows(s);
      expect(writes.every((w) => w.origin === s.config.originTag && w.op === 'U')).toBe(true);
      // The kill landed before the end: the restarted sink had events left to write.
      expect((await sink(second.url)).details.inputs).toBeGreaterThan(0);
      // No write applied twice, none went back: per user, every tagged write changed the row, and
      // the rounds its email and city went through only ever increase.
      const images = await s.db(s.changelog).select('before_image', 'after_image').orderBy(s.dbKind.changelogOrder);
      const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v) as Record<string, string | null>;
      const rounds = new Map<string, { email: number[]; city: number[] }>();
      for (const { before_image, after_image } of images) {
        const before = json(before_image);
        const after = json(after_image);
        expect(after).not.toEqual(before);
        const seen = rounds.get(after.id!) ?? { email: [], city: [] };
        if (after.email !== before.email) seen.email.push(Number(/^r(\d+)\./.exec(after.email!)![1]));
        if (after.city !== before.city) seen.city.push(Number(/^City (\d+)\./.exec(after.city!)![1]));
        rounds.set(after.id!, seen);
      }
      expect(rounds.size).toBe(IDS);
      for (const { email, city } of rounds.values()) {
        for (const list of [email, city]) {
          expect(list.every((r, i) => i === 0 || r > list[i - 1]!)).toBe(true);
          expect(list.at(-1)).toBe(ROUNDS - 1);
        }
      }
    }, 240_000);
  });
}

