import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import { parseConfig } from '../../src/config';
import type { ChangeRow, Dialect, Position, TableInfo } from '../../src/dialects/dialect';
import { MssqlDialect } from '../../src/dialects/mssql.dialect';
import type { ChangelogSourceConfig } from '../../src/import/changelog/config';
import { ChangelogSourceHealthCheck } from '../../src/import/changelog/health';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { freshName, waitFor } from '../helpers';
import { createBanyanLogins, databaseConfig, mssqlTarget, type BanyanLogins, type MssqlServer } from '../mssql';

/**
 * What a legacy SQL Server application does to a tracked table beyond plain INSERT, UPDATE and
 * DELETE: key shuffles, its own AFTER triggers, MERGE, and the writes the triggers cannot see
 * (TRUNCATE TABLE, a disabled trigger). The legacy application writes as the suite's admin login;
 * Banyan installs as a fresh install login and reads as a fresh running login, with exactly the
 * permissions of docs/dialect-mssql.md (test/mssql.ts createBanyanLogins).
 */
const target = await mssqlTarget('test/integration/mssql-cases.test.ts');

// Typed as the interface, as the poller and the migrations hold it.
const dialect: Dialect = new MssqlDialect();

type Image = Record<string, string | null>;

/** A consumer of the table's topic keyed by primary key: each change in position order, a delete removes the key. */
function applyByKey(info: TableInfo, rows: ChangeRow[], into = new Map<string, Image>()): Map<string, Image> {
  for (const row of rows) {
    const image = (row.after ?? row.before)!;
    const key = info.primaryKey.map((k) => image[k]).join('|');
    if (row.op === 'D') into.delete(key);
    else into.set(key, row.after!);
  }
  return into;
}

/** [op, before, after] of each row, for comparing the rows of one statement, which come in any order. */
const shapes = (rows: ChangeRow[]) => rows.map((r) => [r.op, r.before, r.after]);

describe.skipIf(target.skip !== undefined)('SQL Server: key shuffles, legacy triggers, MERGE, and what the triggers cannot see', () => {
  let server: MssqlServer | undefined;
  let admin: Knex | undefined;
  let logins: BanyanLogins | undefined;
  const schema = freshName('banyan_cases');
  const tracked: TableInfo[] = [];
  const q = (name: string) => `${dialect.quoteIdentifier(schema)}.${dialect.quoteIdentifier(name)}`;

  beforeAll(async () => {
    server = await target.start();
    admin = createKnex(databaseConfig(server.url));
    // Owned by dbo, as a legacy schema is, so the triggers' ownership chain reaches Banyan's objects.
    await admin.raw(`CREATE SCHEMA ${dialect.quoteIdentifier(schema)} AUTHORIZATION [dbo]`);
    logins = await createBanyanLogins(admin, server.url, schema);
  }, 900_000);

  afterAll(async () => {
    if (admin) {
      for (const info of tracked) for (const statement of dialect.uninstallChangelog(info)) await admin.raw(statement);
      const tables = (await admin.raw('SELECT [name] FROM [sys].[tables] WHERE [schema_id] = SCHEMA_ID(?)', [schema])) as Array<{ name: string }>;
      for (const { name } of tables) await admin.raw(`DROP TABLE ${q(name)}`);
      await admin.raw(`DROP SCHEMA IF EXISTS ${dialect.quoteIdentifier(schema)}`);
      await logins?.drop();
      await admin.destroy();
    }
    await server?.stop();
  }, 120_000);

  /**
   * A fresh legacy table (made by the admin login, with `legacy` statements of its own run first,
   * such as its own triggers), then `banyan migrate` for it as the install login.
   */
  async function track(definition: string, legacy: (table: string, name: string) => string[] = () => []): Promise<TableInfo> {
    const name = freshName('t');
    await admin!.raw(`CREATE TABLE ${q(name)} (${definition})`);
    for (const statement of legacy(q(name), name)) await admin!.raw(statement);
    await logins!.beforeInstall({ schema, name });
    const { tables } = await migrateChangelogs(logins!.installer, dialect, [`${schema}.${name}`]);
    tracked.push(tables[0]!);
    await logins!.afterInstall({ schema, name });
    return tables[0]!;
  }

  /** Reads, as the running login, until exactly `count` changes after `from` arrived; fails on more. */
  async function changes(info: TableInfo, from: Position | undefined, count: number): Promise<{ rows: ChangeRow[]; position: Position | undefined }> {
    const rows: ChangeRow[] = [];
    let position = from;
    await waitFor(
      async () => {
        const batch = await dialect.readChanges(logins!.runner, info, position, 1000, Date.now());
        rows.push(...batch.rows);
        position = batch.position;
        return rows.length >= count;
      },
      () => `${count} changes of ${info.name} (${rows.length} so far)`,
      30_000,
    );
    expect(rows).toHaveLength(count);
    expect((await dialect.readChanges(logins!.runner, info, position, 1000, Date.now())).rows).toEqual([]);
    return { rows, position };
  }

  /** The table's rows as the admin login reads them, keyed as applyByKey keys them (int and nvarchar columns only). */
  async function tableRows(info: TableInfo): Promise<Map<string, Image>> {
    const rows = (await admin!.raw(`SELECT * FROM ${q(info.name)}`)) as Array<Record<string, unknown>>;
    const text = rows.map((r) => Object.fromEntries(info.columns.map((c) => [c.name, r[c.name] === null ? null : String(r[c.name])])) as Image);
    return new Map(text.map((r) => [info.primaryKey.map((k) => r[k]).join('|'), r]));
  }

  /** `banyan doctor`'s check of the table, run as the running login. */
  async function doctor(info: TableInfo) {
    const config = parseConfig(
      `kafka: { brokers: "unused:9092" }
schemaRegistry: { url: "http://unused" }
databases:
  legacy: { dialect: mssql, host: unused, database: unused, user: unused }
sources:
  - name: cases
    type: changelog
    database: legacy
    table: ${JSON.stringify(`${schema}.${info.name}`)}
`,
      'mssql-cases',
      {},
    );
    return new ChangelogSourceHealthCheck(config.sources[0] as ChangelogSourceConfig, 'sources[0].table', logins!.runner, dialect).check();
  }

  /** What doctor appends when the running login cannot read `nested triggers` (SQL Server 2022 may ask VIEW SERVER PERFORMANCE STATE for it). */
  async function nestedTriggersNote(): Promise<string> {
    const [row] = (await logins!.runner.raw("SELECT CONVERT(INT, [value_in_use]) AS [v] FROM [sys].[configurations] WHERE [name] = N'nested triggers'")) as Array<{ v: number }>;
    return row === undefined
      ? "; the server option 'nested triggers' could not be read (sys.configurations; SQL Server 2022 documents VIEW SERVER PERFORMANCE STATE for it): check by hand that it is 1"
      : '';
  }

  it('records SET id = id + 1 over several rows as the key join pairs them, and a consumer keyed by the key ends on the rows of the table', async () => {
    const info = await track('id INT NOT NULL PRIMARY KEY, v NVARCHAR(10) NOT NULL');
    await admin!.raw(`INSERT INTO ${q(info.name)} VALUES (1, N'a'), (2, N'b'), (3, N'c')`);
    const inserted = await changes(info, undefined, 3);

    await admin!.raw(`UPDATE ${q(info.name)} SET id = id + 1`);
    // deleted holds keys 1, 2, 3 and inserted 2, 3, 4: keys 2 and 3 pair as updates carrying the
    // values that moved onto them, key 1 is only deleted, key 4 only inserted.
    const shuffled = await changes(info, inserted.position, 4);
    expect(shapes(shuffled.rows)).toEqual(
      expect.arrayContaining([
        ['D', { id: '1', v: 'a' }, null],
        ['U', { id: '2', v: 'b' }, { id: '2', v: 'a' }],
        ['U', { id: '3', v: 'c' }, { id: '3', v: 'b' }],
        ['I', null, { id: '4', v: 'c' }],
      ]),
    );

    // Two keys swapped: both keys are in deleted and in inserted, so two updates.
    await admin!.raw(`UPDATE ${q(info.name)} SET id = CASE id WHEN 2 THEN 3 ELSE 2 END WHERE id IN (2, 3)`);
    const swapped = await changes(info, shuffled.position, 2);
    expect(shapes(swapped.rows)).toEqual(
      expect.arrayContaining([
        ['U', { id: '2', v: 'a' }, { id: '2', v: 'b' }],
        ['U', { id: '3', v: 'b' }, { id: '3', v: 'a' }],
      ]),
    );

    const consumer = applyByKey(info, [...inserted.rows, ...shuffled.rows, ...swapped.rows]);
    expect(consumer).toEqual(await tableRows(info));
    expect([...consumer.keys()].sort()).toEqual(['2', '3', '4']);
  });

  it("records a legacy AFTER trigger's update of the same rows after the statement's own change, so each key's last change is the row as it ends", async () => {
    const [nested] = (await admin!.raw("SELECT CONVERT(INT, [value_in_use]) AS [v] FROM [sys].[configurations] WHERE [name] = N'nested triggers'")) as Array<{ v: number }>;
    expect(nested?.v, "the server option 'nested triggers' (this test needs the default, 1)").toBe(1);
    // The legacy application's modified-counter setter, there before Banyan was installed.
    const info = await track('id INT NOT NULL PRIMARY KEY, v NVARCHAR(20) NOT NULL, modified INT NOT NULL DEFAULT 0', (table, name) => [
      `CREATE TRIGGER ${q(`${name}_modified`)} ON ${table} AFTER INSERT, UPDATE AS
       BEGIN SET NOCOUNT ON; UPDATE t SET modified = t.modified + 1 FROM ${table} AS t JOIN inserted AS i ON i.id = t.id; END;`,
    ]);

    await admin!.raw(`INSERT INTO ${q(info.name)} (id, v) VALUES (1, N'a'), (2, N'b'), (3, N'c')`);
    // Banyan's trigger fires first: the three inserts as the INSERT left them, then the legacy
    // trigger's nested UPDATE, which fires Banyan's trigger again (not the legacy one: RECURSIVE_TRIGGERS is off).
    const inserted = await changes(info, undefined, 6);
    expect(shapes(inserted.rows.slice(0, 3))).toEqual(
      expect.arrayContaining([1, 2, 3].map((id) => ['I', null, { id: String(id), v: 'abc'[id - 1], modified: '0' }])),
    );
    expect(shapes(inserted.rows.slice(3))).toEqual(
      expect.arrayContaining([1, 2, 3].map((id) => ['U', { id: String(id), v: 'abc'[id - 1], modified: '0' }, { id: String(id), v: 'abc'[id - 1], modified: '1' }])),
    );

    await admin!.raw(`UPDATE ${q(info.name)} SET v = v + N'!' WHERE id IN (1, 2)`);
    const updated = await changes(info, inserted.position, 4);
    expect(shapes(updated.rows.slice(0, 2))).toEqual(
      expect.arrayContaining([1, 2].map((id) => ['U', { id: String(id), v: 'abc'[id - 1], modified: '1' }, { id: String(id), v: `${'abc'[id - 1]}!`, modified: '1' }])),
    );
    expect(shapes(updated.rows.slice(2))).toEqual(
      expect.arrayContaining([1, 2].map((id) => ['U', { id: String(id), v: `${'abc'[id - 1]}!`, modified: '1' }, { id: String(id), v: `${'abc'[id - 1]}!`, modified: '2' }])),
    );

    await admin!.raw(`DELETE FROM ${q(info.name)} WHERE id = 3`);
    const deleted = await changes(info, updated.position, 1);
    expect(shapes(deleted.rows)).toEqual([['D', { id: '3', v: 'c', modified: '1' }, null]]);

    const consumer = applyByKey(info, [...inserted.rows, ...updated.rows, ...deleted.rows]);
    expect(consumer).toEqual(await tableRows(info));
    expect(consumer.get('1')).toEqual({ id: '1', v: 'a!', modified: '2' });

    // doctor names the legacy trigger beside Banyan's, which it finds first on every statement.
    expect(await doctor(info)).toEqual({
      name: 'source:cases',
      ok: true,
      detail:
        `table ${schema}.${info.name} (key id): changelog and triggers installed, current for its 3 columns; ` +
        `other triggers on [${schema}].[${info.name}]: [${info.name}_modified] AFTER INSERT, UPDATE${await nestedTriggersNote()}`,
    });
  });

  it('records a MERGE that inserts, updates and deletes as one change per row and action', async () => {
    const info = await track('id INT NOT NULL PRIMARY KEY, v NVARCHAR(10) NOT NULL');
    await admin!.raw(`INSERT INTO ${q(info.name)} VALUES (1, N'a'), (2, N'b')`);
    const inserted = await changes(info, undefined, 2);

    await admin!.raw(`MERGE INTO ${q(info.name)} AS t
USING (VALUES (1, N'A'), (3, N'c')) AS s (id, v) ON t.id = s.id
WHEN MATCHED THEN UPDATE SET v = s.v
WHEN NOT MATCHED BY TARGET THEN INSERT (id, v) VALUES (s.id, s.v)
WHEN NOT MATCHED BY SOURCE THEN DELETE;`);
    // The trigger fires once per action of the MERGE, each time with that action's rows.
    const merged = await changes(info, inserted.position, 3);
    expect(shapes(merged.rows)).toEqual(
      expect.arrayContaining([
        ['U', { id: '1', v: 'a' }, { id: '1', v: 'A' }],
        ['D', { id: '2', v: 'b' }, null],
        ['I', null, { id: '3', v: 'c' }],
      ]),
    );
    expect(applyByKey(info, [...inserted.rows, ...merged.rows])).toEqual(await tableRows(info));
  });

  it('does not see TRUNCATE TABLE: its rows live on downstream, and neither the poller nor doctor says anything', async () => {
    const info = await track('id INT NOT NULL PRIMARY KEY, v NVARCHAR(10) NOT NULL');
    await admin!.raw(`INSERT INTO ${q(info.name)} VALUES (1, N'a'), (2, N'b'), (3, N'c')`);
    const before = await changes(info, undefined, 3);
    await admin!.raw(`TRUNCATE TABLE ${q(info.name)}`);
    await admin!.raw(`INSERT INTO ${q(info.name)} VALUES (4, N'd')`);
    const after = await changes(info, before.position, 1);
    expect(shapes(after.rows)).toEqual([['I', null, { id: '4', v: 'd' }]]);
    // The documented blind spot: the consumer still holds the truncated rows.
    expect([...applyByKey(info, [...before.rows, ...after.rows]).keys()]).toEqual(['1', '2', '3', '4']);
    expect([...(await tableRows(info)).keys()]).toEqual(['4']);
    expect(await doctor(info)).toMatchObject({ ok: true });
  });

  it('records nothing while its trigger is disabled, and doctor fails naming the trigger until it is enabled again', async () => {
    const info = await track('id INT NOT NULL PRIMARY KEY, v NVARCHAR(10) NOT NULL');
    const [trigger] = (await dialect.changelogState(logins!.runner, info)).triggers;
    const note = await nestedTriggersNote();
    const current = `table ${schema}.${info.name} (key id): changelog and triggers installed, current for its 2 columns${note}`;
    expect(await doctor(info)).toEqual({ name: 'source:cases', ok: true, detail: current });

    await admin!.raw(`INSERT INTO ${q(info.name)} VALUES (1, N'a')`);
    await admin!.raw(`ALTER TABLE ${q(info.name)} DISABLE TRIGGER ${dialect.quoteIdentifier(trigger!)}`);
    await admin!.raw(`INSERT INTO ${q(info.name)} VALUES (2, N'b')`);
    expect(await doctor(info)).toEqual({
      name: 'source:cases',
      ok: false,
      detail:
        `sources[0].table: trigger ${trigger} of table ${schema}.${info.name} is disabled, so nothing written to the table is recorded: ` +
        `ALTER TABLE ${schema}.${info.name} ENABLE TRIGGER ${trigger}; what was written while it was disabled is not in the changelog${note}`,
    });

    await admin!.raw(`ALTER TABLE ${q(info.name)} ENABLE TRIGGER ${dialect.quoteIdentifier(trigger!)}`);
    await admin!.raw(`INSERT INTO ${q(info.name)} VALUES (3, N'c')`);
    expect(await doctor(info)).toEqual({ name: 'source:cases', ok: true, detail: current });
    // The poller reads on past the gap without a word: row 2 is never recorded.
    const { rows } = await changes(info, undefined, 2);
    expect(shapes(rows)).toEqual([
      ['I', null, { id: '1', v: 'a' }],
      ['I', null, { id: '3', v: 'c' }],
    ]);
  });
});
