import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import { MIGRATIONS_TABLE } from '../../migrations/changelog';
import { createKnex, type DatabaseSettings } from '../../src/clients/database';
import type { ChangeRow, Dialect, Position, TableInfo } from '../../src/dialects/dialect';
import { MysqlDialect } from '../../src/dialects/mysql.dialect';
import { PostgresDialect } from '../../src/dialects/postgres.dialect';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { isEcho } from '../../src/transforms/mappings/views';
import { freshName, readDecoded, spawnBanyan, testConfig, waitFor, writeConfigFile } from '../helpers';

/**
 * Issue 12, item 10: any session can set Banyan's origin value. A change tagged so by another
 * database user is a normal change (not an echo), counted as a forged tag and logged; the same tag
 * from Banyan's own user (the database's `user`, or `originUser`) stays an echo. Real databases, a
 * second login made for the test (and dropped after it), real Kafka and a real `banyan run`.
 */

interface Change {
  op: string;
  after: Record<string, unknown> | null;
  source: { position: string; origin: string | null };
}

interface Place {
  /** The table as the config names it. */
  table: string;
  /** Where the table lives: a PostgreSQL schema or a MariaDB database. */
  qualifier: string;
  /** Connected as Banyan's configured user. */
  db: Knex;
  settings: DatabaseSettings;
  /** The `databases.legacy` block's fields, as YAML flow-map entries. */
  yaml: string;
  drop(): Promise<void>;
}

interface Engine {
  label: string;
  dialect: Dialect;
  /** A fresh place with a table `accounts (id, note)`. */
  prepare(): Promise<Place>;
  /** A fresh login allowed to write the table (and what its trigger writes), connected. */
  createWriter(place: Place, name: string, password: string): Promise<Knex>;
  dropWriter(place: Place, name: string): Promise<void>;
  /** What any session can run to set Banyan's origin value for its writes. */
  forge(trx: Knex.Transaction, tag: string): Promise<void>;
  /** The writer the trigger records for a login of this name. */
  recorded(name: string): RegExp;
  /** `originUser` naming that login, as a user would write it in the config. */
  originUserFor(name: string): string;
  /** The changelog table as Banyan made it before it recorded writers, with one row an old trigger wrote. */
  olderChangelog(place: Place): string[];
  columnExists(place: Place, table: string, column: string): Promise<boolean>;
}

const POSTGRES: Engine = {
  label: 'PostgreSQL',
  dialect: new PostgresDialect(),
  async prepare() {
    const schema = freshName('banyan_forge');
    const settings = testConfig(`databases:\n  legacy: { dialect: postgres, database: postgres, user: postgres }`).databases.legacy!;
    const db = createKnex(settings);
    await db.raw(`CREATE SCHEMA ${schema}`);
    await db.raw(`CREATE TABLE ${schema}.accounts (id int PRIMARY KEY, note varchar(40))`);
    return {
      table: `${schema}.accounts`,
      qualifier: schema,
      db,
      settings,
      yaml: 'dialect: postgres, database: postgres, user: postgres',
      async drop() {
        await db.raw(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await db(MIGRATIONS_TABLE).where('name', 'like', `changelog.${schema}.%`).delete();
        await db.destroy();
      },
    };
  },
  async createWriter(place, name, password) {
    const s = place.qualifier;
    await place.db.raw(`CREATE ROLE ${name} LOGIN PASSWORD '${password}'`);
    // The trigger function runs as the writer: it inserts into the changelog and draws its sequence.
    await place.db.raw(`GRANT USAGE ON SCHEMA ${s} TO ${name}`);
    await place.db.raw(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.accounts TO ${name}`);
    await place.db.raw(`GRANT INSERT ON ${s}.banyan_cl_accounts TO ${name}`);
    await place.db.raw(`GRANT USAGE ON SEQUENCE ${s}.banyan_cl_accounts_change_id_seq TO ${name}`);
    return createKnex({ ...place.settings, user: name, password });
  },
  async dropWriter(place, name) {
    await place.db.raw(`DROP OWNED BY ${name}`);
    await place.db.raw(`DROP ROLE ${name}`);
  },
  async forge(trx, tag) {
    await trx.raw(`SELECT set_config('banyan.origin', ?, true)`, [tag]);
  },
  recorded: (name) => new RegExp(`^${name}$`),
  originUserFor: (name) => name,
  olderChangelog: (place) => [
    `CREATE TABLE ${place.qualifier}.banyan_cl_accounts (
       change_id bigserial PRIMARY KEY,
       txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
       op char(1) NOT NULL,
       changed_at timestamptz(6) NOT NULL DEFAULT clock_timestamp(),
       origin text NULL,
       before_image json NULL,
       after_image json NULL)`,
    `INSERT INTO ${place.qualifier}.banyan_cl_accounts (op, origin, after_image) VALUES ('I', 'banyan', '{"id":"7","note":"old trigger"}')`,
  ],
  async columnExists(place, table, column) {
    const { rows } = await place.db.raw('SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = ?', [
      place.qualifier,
      table,
      column,
    ]);
    return rows[0].n === 1;
  },
};

const MARIADB: Engine = {
  label: 'MariaDB',
  dialect: new MysqlDialect(),
  async prepare() {
    const database = freshName('banyan_forge');
    const admin = createKnex(testConfig(`databases:\n  legacy: { dialect: mariadb, database: mysql, user: root }`).databases.legacy!);
    await admin.raw(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
    const settings = testConfig(`databases:\n  legacy: { dialect: mariadb, database: ${database}, user: root }`).databases.legacy!;
    const db = createKnex(settings);
    await db.raw('CREATE TABLE accounts (id int PRIMARY KEY, note varchar(40))');
    return {
      table: 'accounts',
      qualifier: database,
      db,
      settings,
      yaml: `dialect: mariadb, database: ${database}, user: root`,
      async drop() {
        await db.destroy();
        await admin.raw(`DROP DATABASE IF EXISTS \`${database}\``);
        await admin.destroy();
      },
    };
  },
  async createWriter(place, name, password) {
    // Any host: whether the server sees 127.0.0.1 or localhost depends on its name resolution.
    await place.db.raw(`CREATE USER '${name}'@'%' IDENTIFIED BY '${password}'`);
    // The triggers run with their definer's rights: the writer needs only the table's.
    await place.db.raw(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${place.qualifier}\`.accounts TO '${name}'@'%'`);
    return createKnex({ ...place.settings, user: name, password });
  },
  async dropWriter(place, name) {
    await place.db.raw(`DROP USER IF EXISTS '${name}'@'%'`);
  },
  async forge(trx, tag) {
    await trx.raw('SET @banyan_origin = ?', [tag]);
  },
  // USER(): the name the client gave, '@', the host the server saw it come from.
  recorded: (name) => new RegExp(`^${name}@[^@]+$`),
  originUserFor: (name) => `'${name}'@'%'`,
  olderChangelog: () => [
    `CREATE TABLE banyan_cl_accounts (
       change_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
       op CHAR(1) CHARACTER SET ascii NOT NULL,
       changed_at DATETIME(6) NOT NULL,
       origin VARCHAR(128) NULL,
       before_image LONGTEXT NULL,
       after_image LONGTEXT NULL,
       PRIMARY KEY (change_id)
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    `INSERT INTO banyan_cl_accounts (op, changed_at, origin, after_image) VALUES ('I', UTC_TIMESTAMP(6), 'banyan', '{"id":"7","note":"old trigger"}')`,
  ],
  async columnExists(place, table, column) {
    const [rows] = await place.db.raw('SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?', [
      place.qualifier,
      table,
      column,
    ]);
    return Number(rows[0].n) === 1;
  },
};

interface LogLine {
  level: number;
  event?: string;
  msg: string;
  [field: string]: unknown;
}

interface SourceStatus {
  name: string;
  state: string;
  records: number;
  details: Record<string, unknown>;
}

describe.each([POSTGRES, MARIADB])('$label: who may tag a write', (engine) => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A fresh place, and a second login (Banyan's own user is the place's `user`). */
  async function setUp(): Promise<{ place: Place; writer: string; other: Knex }> {
    const place = await engine.prepare();
    cleanups.push(() => place.drop());
    await migrateChangelogs(place.db, engine.dialect, [place.table]);
    const writer = freshName('banyan_writer');
    const password = randomBytes(12).toString('hex');
    cleanups.push(() => engine.dropWriter(place, writer));
    const other = await engine.createWriter(place, writer, password);
    cleanups.push(() => other.destroy());
    return { place, writer, other };
  }

  /** `banyan run` with one changelog source on the table; its log lines and status URL. */
  async function run(place: Place, originUser?: string): Promise<{ url: string; topic: string; logs: LogLine[] }> {
    const topic = freshName('legacy.forge.accounts');
    const file = writeConfigFile(`
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('forge')}
  topics: { offsets: ${freshName('offsets')}, deadLetter: ${freshName('dlq')} }
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
http: { port: 0 }
databases:
  legacy: { ${place.yaml}${originUser === undefined ? '' : `, originUser: ${JSON.stringify(originUser)}`} }
sources:
  - { name: accounts, type: changelog, database: legacy, table: ${place.table}, topic: ${topic}, snapshot: false, pollIntervalMs: 50 }
`);
    const child: ChildProcess = spawnBanyan(file, ['run'], 'pipe');
    cleanups.push(async () => {
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
    });
    const logs: LogLine[] = [];
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (line.startsWith('{')) logs.push(JSON.parse(line) as LogLine);
    });
    const listening = await waitFor(() => logs.find((l) => l.event === 'http.listening'), 'banyan run to listen');
    return { url: String(listening.url), topic, logs };
  }

  async function source(url: string): Promise<SourceStatus> {
    const status = (await (await fetch(`${url}/status`)).json()) as { sources: SourceStatus[] };
    return status.sources.find((s) => s.name === 'accounts')!;
  }

  /** Inserts a row in a transaction whose writes carry `tag`, set as any session can. */
  async function tagged(db: Knex, table: string, id: number, tag: string): Promise<void> {
    await db.transaction(async (trx) => {
      await engine.forge(trx, tag);
      await trx.raw(`INSERT INTO ${table} (id, note) VALUES (?, ?)`, [id, `row ${id}`]);
      // MariaDB: a user variable outlives the transaction on the pooled connection.
      await engine.dialect.clearOrigin(trx);
    });
  }

  it('a change another login tags with Banyan’s origin is a normal change, counted and logged as forged; Banyan’s own tag stays an echo', async () => {
    const { place, writer, other } = await setUp();
    const { url, topic, logs } = await run(place);
    const config = testConfig();
    // The default tag, as `banyan run` has it (its config sets none).
    const originTag = config.originTag;

    await tagged(other, place.table, 1, originTag); // forged: the second login
    await tagged(place.db, place.table, 2, originTag); // Banyan's own user: an echo
    await place.db.raw(`INSERT INTO ${place.table} (id, note) VALUES (3, 'marker')`);

    const changes = await readDecoded<Change>(config, topic, { until: (c) => c.after?.id === 3 });
    expect(changes.map((c) => [c.after?.id, c.source.origin, c.headers['banyan.echo'] ?? null])).toEqual([
      [1, originTag, null],
      [2, originTag, 'true'],
      [3, null, null],
    ]);
    // What decides the domain path (transforms drop echoes): the forged change goes on to the events.
    const input = (c: Change & { headers: Record<string, string> }) => ({ topic, partition: 0, offset: '0', key: null, value: c as unknown as Record<string, unknown>, headers: c.headers, timestamp: 0 });
    expect(changes.map((c) => isEcho(input(c)))).toEqual([false, true, false]);

    // Counted once the batches are committed: the echo's batch is not earlier than the forged one's.
    const status = await waitFor(async () => {
      const s = await source(url);
      return s.records === 3 && s.details.echoes === 1 ? s : undefined;
    }, 'the three changes committed and counted');
    expect(status.details).toMatchObject({ forgedTags: 1, echoes: 1 });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('banyan_source_forged_tags_total{source="accounts"} 1\n');

    const warnings = logs.filter((l) => l.event === 'changelog.forged_tag');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, table: place.table, origin: originTag, rows: 1, positions: [changes[0]!.source.position] });
    expect(String(warnings[0]!.writer)).toMatch(engine.recorded(writer));
    expect(warnings[0]!.msg).toContain(`written by "${String(warnings[0]!.writer)}", not by Banyan's user "${place.settings.user}" (databases.legacy.originUser)`);

    // The changelog holds the writer with each tag, and none without one.
    const rows = await place.db.raw(`SELECT origin, origin_user FROM ${engine.dialect.quoteIdentifier(place.qualifier)}.banyan_cl_accounts ORDER BY change_id`);
    const recorded = (Array.isArray(rows) ? rows[0] : rows.rows) as Array<{ origin: string | null; origin_user: string | null }>;
    expect(recorded).toHaveLength(3);
    expect(recorded[0]!.origin_user).toMatch(engine.recorded(writer));
    expect(recorded[1]!.origin_user).toMatch(engine.recorded(place.settings.user));
    expect(recorded[2]).toEqual({ origin: null, origin_user: null });
  });

  it('with originUser naming the other login, that login’s tag is the echo and the configured user’s is forged', async () => {
    const { place, writer, other } = await setUp();
    const { url, topic, logs } = await run(place, engine.originUserFor(writer));
    const originTag = testConfig().originTag;

    await tagged(other, place.table, 1, originTag); // the login originUser names: an echo
    await tagged(place.db, place.table, 2, originTag); // the database's `user`: not trusted now
    await place.db.raw(`INSERT INTO ${place.table} (id, note) VALUES (3, 'marker')`);

    const changes = await readDecoded<Change>(testConfig(), topic, { until: (c) => c.after?.id === 3 });
    expect(changes.map((c) => [c.after?.id, c.headers['banyan.echo'] ?? null])).toEqual([
      [1, 'true'],
      [2, null],
      [3, null],
    ]);
    const status = await waitFor(async () => {
      const s = await source(url);
      return s.records === 3 && s.details.forgedTags === 1 ? s : undefined;
    }, 'the three changes committed and counted');
    expect(status.details).toMatchObject({ forgedTags: 1, echoes: 1 });
    const warnings = logs.filter((l) => l.event === 'changelog.forged_tag');
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]!.writer)).toMatch(engine.recorded(place.settings.user));
    expect(warnings[0]).toMatchObject({ trustedWriter: engine.originUserFor(writer), positions: [changes[1]!.source.position] });
  });

  it('`banyan migrate` gives a changelog an older Banyan made the writer column, keeping its rows, and then records the writer', async () => {
    const place = await engine.prepare();
    cleanups.push(() => place.drop());
    const older = engine.olderChangelog(place);
    for (const statement of older) await place.db.raw(statement);
    expect(await engine.columnExists(place, 'banyan_cl_accounts', 'origin_user')).toBe(false);

    const first = await migrateChangelogs(place.db, engine.dialect, [place.table]);
    expect(first.migrations).toHaveLength(1);
    expect(await engine.columnExists(place, 'banyan_cl_accounts', 'origin_user')).toBe(true);
    // Again: nothing to apply, nothing to add.
    expect((await migrateChangelogs(place.db, engine.dialect, [place.table])).migrations).toEqual([]);

    const writer = freshName('banyan_writer');
    const password = randomBytes(12).toString('hex');
    cleanups.push(() => engine.dropWriter(place, writer));
    const other = await engine.createWriter(place, writer, password);
    cleanups.push(() => other.destroy());
    await tagged(other, place.table, 8, 'banyan');

    const table: TableInfo = first.tables[0]!;
    const rows: ChangeRow[] = [];
    let position: Position | undefined;
    // PostgreSQL passes a change once no older transaction can still commit below it: read until both are there.
    await waitFor(async () => {
      const batch = await engine.dialect.readChanges(place.db, table, position, 100, Date.now());
      rows.push(...batch.rows);
      position = batch.position;
      return rows.length >= 2;
    }, 'the old row and the new one');
    expect(rows.map((r) => [r.after?.id, r.origin, r.originUser ?? null])).toEqual([
      ['7', 'banyan', null],
      ['8', 'banyan', expect.stringMatching(engine.recorded(writer))],
    ]);
  });
});
