import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import { parseConfig, type BanyanConfig } from '../../src/config';
import { legacySinkTargets, type LegacySinkConfig } from '../../src/config/sinks';
import { createDialect } from '../../src/dialects';
import type { DomainEvent } from '../../src/domain/event';
import { createPublisher, type Publisher } from '../../src/domain/publish';
import { createLegacySink } from '../../src/export/module';
import type { LegacySink } from '../../src/export/legacy/sink';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { AvroEncoder } from '../../src/runtime/avro';
import { createChangeTypes } from '../../src/runtime/change-types';
import { createKafka } from '../../src/runtime/kafka';
import { createRootLogger } from '../../src/runtime/logger';
import { createSchemaRegistry } from '../../src/runtime/registry';
import { runnerKafka, runnerOptions } from '../../src/runtime/source-runner';
import { catalogOf } from '../../src/transforms/module';
import { freshName, readAll, testKafka, textHeaders, waitFor, writeConfigFile } from '../helpers';
import { LEGACY_DATABASES, serviceEvent, user, type LegacyDatabase } from '../legacy-databases';
import { TcpProxy } from '../tcp-proxy';

/**
 * The legacy sink in process, its database behind a TCP proxy: a connection cut in the middle of a
 * batch and refused while the sink reconnects, and rows that cannot be inserted yet. Exact counts
 * of rows, changelog rows and the sink's own account.
 */

interface LogLine {
  event?: string;
  msg?: string;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

interface Setup {
  config: BanyanConfig;
  sink: LegacySink;
  /** The sink's own pool. */
  sinkDb: ReturnType<typeof createKnex>;
  publisher: Publisher;
  proxy: TcpProxy;
  db: ReturnType<typeof createKnex>;
  table: string;
  changelog: string | Knex.Raw;
  lines: LogLine[];
}

async function setup(kind: LegacyDatabase, rows: Array<Record<string, unknown>>, waitMs: number, poolMax = 4): Promise<Setup> {
  const proxy = await TcpProxy.start();
  cleanups.push(() => proxy.close());
  const prepared = await kind.prepare({ port: proxy.port });
  cleanups.push(prepared.cleanup);
  proxy.forwardTo(prepared.direct);
  const yaml = `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('sinkfault')}
  topics:
    offsets: ${freshName('offsets')}
    deadLetter: ${freshName('dlq')}
    control: ${freshName('control')}
    controlAudit: ${freshName('control-audit')}
    domainPrefix: ${freshName('domain')}
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
${prepared.yaml}
changeTypes:
  user: { initial: dual }
  address: { initial: dual }
sources:
  - { name: users, type: changelog, database: legacy, table: ${prepared.table}, topic: ${freshName('legacy.users')}, snapshot: false }
transforms:
  - name: legacy-users
    from: ${freshName('unused')}
    format: legacy-changelog
    events:
      - { event: UserChanged, key: id, fields: { firstName: first_name, lastName: last_name, email: email } }
      - { event: AddressChanged, key: id, fields: { street: street, city: city, postalCode: postal_code, state: state, country: country } }
sinks:
  - { name: users-back, type: legacy, mapping: legacy-users, database: legacy, table: ${prepared.table}, missingRow: { waitMs: ${waitMs} } }
`;
  const config = parseConfig(yaml, writeConfigFile(yaml));
  await prepared.db.raw(kind.ddl(prepared.table));
  if (rows.length) await prepared.db(prepared.table).insert(rows);
  await migrateChangelogs(prepared.db, createDialect(config.databases.legacy!), [prepared.table]);

  const lines: LogLine[] = [];
  const logger = createRootLogger('info', {
    write: (text: string) => {
      lines.push(JSON.parse(text) as LogLine);
      if (process.env.BANYAN_TEST_LOG_LEVEL === 'info') process.stderr.write(text);
    },
  });
  const catalog = catalogOf(config);
  const kafka = createKafka(config.kafka, logger);
  const changeTypes = createChangeTypes(config, kafka, logger);
  cleanups.push(() => changeTypes.stop());
  // The sink's pool goes through the proxy.
  const db = createKnex({ ...config.databases.legacy!, pool: { min: 0, max: poolMax } });
  cleanups.push(() => db.destroy());
  const target = legacySinkTargets(config, catalog).get('users-back')!;
  const sink = createLegacySink(config, catalog, config.sinks[0] as LegacySinkConfig, target, {
    kafka,
    runnerKafka: runnerKafka(kafka, runnerOptions(config), logger),
    encoder: new AvroEncoder(createSchemaRegistry(config.schemaRegistry)),
    db,
    changeTypes,
    logger,
  });
  cleanups.push(() => sink.stop());
  const publisher = await createPublisher({ kafka: testKafka(config), schemaRegistry: config.schemaRegistry.url, catalog }, freshName('service'));
  cleanups.push(() => publisher.close());
  await sink.start();
  await waitFor(() => sink.status.state === 'running' && (sink.status.details.partitions as string[]).length > 0, 'the sink to run and own its partitions');
  return { config, sink, sinkDb: db, publisher, proxy, db: prepared.db, table: prepared.table, changelog: kind.changelog(prepared.db, prepared.table), lines };
}

const details = (s: Setup) => s.sink.status.details as { inputs: number; written: { updated: number; inserted: number; deleted: number }; noops: number; waitingRows: number; refusedRows: number };

function round(ids: number[], n: number, at: number): DomainEvent[] {
  return ids.map((id) => serviceEvent('UserChanged', id, { email: `r${n}.u${id}@example.com` }, at + id));
}

for (const kind of LEGACY_DATABASES) {
  describe(`legacy sink faults on ${kind.name}`, () => {
    it('a connection cut mid-batch and refused while the sink reconnects: it pauses, resumes, and writes every event once', async () => {
      const ids = Array.from({ length: 50 }, (_, i) => i + 1);
      const s = await setup(kind, ids.map(user), 0);
      const at = Date.now();
      await s.publisher.publish(round(ids, 1, at));
      await waitFor(() => details(s).inputs === 50, 'round 1 written');
      expect(details(s).written.updated).toBe(50);

      // Every new connection refused, and the open ones cut at the sink's next statement: round 2's batch.
      s.proxy.refuse();
      const cut = s.proxy.cutAtNextRequest();
      const from = s.lines.length;
      await s.publisher.publish(round(ids, 2, at + 1000));
      await cut;
      // Failing, then failing again while it reconnects (the proxy still refuses).
      await waitFor(() => s.lines.slice(from).filter((l) => l.event === 'sink.batch_failed').length >= 2, 'two failed attempts while the database is away');
      expect(s.sink.status.state).toBe('backing-off');
      expect(details(s).inputs).toBe(50);
      s.proxy.restore();
      await waitFor(() => details(s).inputs === 100, 'round 2 written after the database came back', 120_000);

      const rows = await s.db(s.table).select('id', 'email').orderBy('id');
      expect(rows.every((r) => r.email === `r2.u${r.id}@example.com`)).toBe(true);
      // Exactly one tagged write per row and round: nothing lost, nothing written twice.
      const writes = await s.db(s.changelog).select('origin', 'op');
      expect(writes).toHaveLength(100);
      expect(writes.every((w) => w.origin === s.config.originTag && w.op === 'U')).toBe(true);
      expect(details(s).written).toEqual({ updated: 100, inserted: 0, deleted: 0 });
      expect(details(s).noops).toBe(0);
      expect(s.sink.status.deadLetters).toBe(0);
    }, 180_000);

    it('the origin tag does not outlive the sink’s transaction on its pooled connection, also after a statement failed in it', async () => {
      // One connection in the sink's pool: the next user of the pool gets the very connection the sink used.
      const s = await setup(kind, [user(1), user(2)], 0, 1);
      const at = Date.now();
      await s.publisher.publish([serviceEvent('UserChanged', 1, { email: `${'x'.repeat(60)}@too.long` }, at), serviceEvent('UserChanged', 2, { email: 'two@example.com' }, at)]);
      await waitFor(() => details(s).inputs === 2, 'both events handled');
      expect(details(s).refusedRows).toBe(1);
      // An ordinary write through that connection is no echo: the changelog records no origin for it.
      await s.sinkDb(s.table).where({ id: 1 }).update({ first_name: 'Plain' });
      const writes = await s.db(s.changelog).select('origin', 'op').orderBy(kind.changelogOrder);
      expect(writes).toEqual([
        { origin: s.config.originTag, op: 'U' },
        { origin: null, op: 'U' },
      ]);
    }, 120_000);

    it('a new row waits for the event that gives its NOT NULL column, then is inserted once', async () => {
      const s = await setup(kind, [user(1)], 600_000);
      const at = Date.now();
      // id 500 does not exist and this event has no last_name (NOT NULL, no default): it waits.
      await s.publisher.publish([serviceEvent('UserChanged', 500, { email: 'new@example.com' }, at), serviceEvent('UserChanged', 1, { email: 'one@example.com' }, at)]);
      await waitFor(() => details(s).waitingRows === 1, 'the row to wait');
      expect(await s.db(s.table).where({ id: 500 }).first()).toBeUndefined();
      // (The event of user 1 may be in another partition, written meanwhile: its count is not asserted here.)
      await s.publisher.publish([serviceEvent('UserChanged', 500, { firstName: 'Nova', lastName: 'Newman' }, at + 10)]);
      await waitFor(() => details(s).inputs === 3, 'the three events handled');
      expect(await s.db(s.table).where({ id: 500 }).first()).toMatchObject({ email: 'new@example.com', first_name: 'Nova', last_name: 'Newman' });
      expect((await s.db(s.table).where({ id: 1 }).first()).email).toBe('one@example.com');
      expect(details(s).written).toEqual({ updated: 1, inserted: 1, deleted: 0 });
      expect(details(s).waitingRows).toBe(0);
      const writes = await s.db(s.changelog).select('op').orderBy(kind.changelogOrder);
      expect(writes.map((w) => w.op).sort()).toEqual(['I', 'U']);
    }, 120_000);

    it('with no wait, a new row without its NOT NULL column is dead-lettered ROW_INCOMPLETE and the rest lands', async () => {
      const s = await setup(kind, [user(1)], 0);
      const at = Date.now();
      await s.publisher.publish([serviceEvent('UserChanged', 500, { email: 'new@example.com' }, at), serviceEvent('UserChanged', 1, { email: 'one@example.com' }, at)]);
      await waitFor(() => details(s).inputs === 2, 'both events handled');
      expect(await s.db(s.table).where({ id: 500 }).first()).toBeUndefined();
      expect((await s.db(s.table).where({ id: 1 }).first()).email).toBe('one@example.com');
      const letters = await readAll(testKafka(s.config), s.config.kafka.topics.deadLetter);
      expect(letters).toHaveLength(1);
      const headers = textHeaders(letters[0]!);
      expect(headers['banyan.dlq.code']).toBe('ROW_INCOMPLETE');
      expect(headers['banyan.dlq.reason']).toContain('last_name');
    }, 120_000);
  });
}
