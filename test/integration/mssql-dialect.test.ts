import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import type { ChangeRow, Dialect, Position, TableInfo } from '../../src/dialects/dialect';
import { MssqlDialect } from '../../src/dialects/mssql.dialect';
import type { DatabaseConfig } from '../../src/config';
import { freshName } from '../helpers';
import { createBanyanLogins, databaseConfig, mssqlTarget, type BanyanLogins, type MssqlServer } from '../mssql';

/**
 * Runs against MSSQL_URL, or a container of MSSQL_IMAGE where a Docker engine runs (test/mssql.ts).
 * The URL's login plays the legacy application and its DBA; Banyan installs as a fresh install
 * login and reads, snapshots and prunes as a fresh running login (docs/dialect-mssql.md, Permissions).
 */
const target = await mssqlTarget('test/integration/mssql-dialect.test.ts');

// Typed as the interface, as the poller and the migrations hold it.
const dialect: Dialect = new MssqlDialect();

describe.skipIf(target.skip !== undefined)('MssqlDialect against SQL Server', () => {
  let server: MssqlServer | undefined;
  let config: DatabaseConfig;
  let db: Knex;
  let logins: BanyanLogins;
  /** Every table install() was run for, uninstalled at the end wherever the dialect put its changelog. */
  const installed: TableInfo[] = [];
  const schema = freshName('banyan_mssql');

  beforeAll(async () => {
    server = await target.start();
    config = databaseConfig(server.url);
    db = createKnex(config);
    // Owned by dbo, as a legacy schema is, so the triggers' ownership chain reaches Banyan's objects.
    await db.raw(`CREATE SCHEMA ${dialect.quoteIdentifier(schema)} AUTHORIZATION [dbo]`);
    // The snapshot tests need SNAPSHOT isolation; without it the dialect falls back to READ COMMITTED.
    await db.raw('ALTER DATABASE CURRENT SET ALLOW_SNAPSHOT_ISOLATION ON');
    logins = await createBanyanLogins(db, server.url, schema);
  }, 900_000);

  afterAll(async () => {
    if (!db) {
      await server?.stop();
      return;
    }
    for (const info of installed) for (const statement of dialect.uninstallChangelog(info)) await db.raw(statement);
    // The tables (their triggers go with them); their changelogs went with the uninstalls above.
    const objects = (await db.raw(`SELECT [name] FROM sys.tables WHERE SCHEMA_NAME([schema_id]) = ?`, [schema])) as Array<{ name: string }>;
    for (const { name } of objects) await db.raw(`DROP TABLE ${q(name)}`);
    await db.raw(`DROP SCHEMA ${dialect.quoteIdentifier(schema)}`);
    await logins?.drop();
    await db.destroy();
    await server?.stop();
  }, 120_000);

  const q = (table: string): string => `${dialect.quoteIdentifier(schema)}.${dialect.quoteIdentifier(table)}`;
  /** The changelog of a table, quoted (it lives in the banyan schema). */
  const cl = (info: TableInfo): string => {
    const ref = dialect.changelogTable(info);
    return `${dialect.quoteIdentifier(ref.schema!)}.${dialect.quoteIdentifier(ref.name)}`;
  };

  /** A fresh table with these column definitions, tracked: its description after install. */
  async function trackedTable(definition: string): Promise<TableInfo> {
    const name = freshName('t');
    await db.raw(`CREATE TABLE ${q(name)} (${definition})`);
    const info = await dialect.describeTable(db, { schema, name });
    await install(info);
    return info;
  }

  /** `banyan migrate`'s statements for the table, as the install login. */
  async function install(info: TableInfo): Promise<void> {
    installed.push(info);
    await logins.beforeInstall(info);
    for (const statement of dialect.installChangelog(info)) await logins.installer.raw(statement);
    await logins.afterInstall(info);
  }

  /** Reads until `count` changes arrived (other sessions may hold the watermark back briefly). */
  async function readChanges(info: TableInfo, from: Position | undefined, count: number): Promise<{ rows: ChangeRow[]; position: Position }> {
    const rows: ChangeRow[] = [];
    let position = from;
    const deadline = Date.now() + 10_000;
    while (rows.length < count && Date.now() < deadline) {
      const batch = await dialect.readChanges(logins.runner, info, position, 1000, Date.now());
      rows.push(...batch.rows);
      position = batch.position;
      if (batch.rows.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { rows, position: position ?? { rv: '0x0000000000000000' } };
  }

  /** Fails, instead of hanging, when a read waits on another transaction's locks. */
  async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not return within ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  it('describes every column type and the primary key in key order', async () => {
    const name = freshName('described');
    await db.raw(`CREATE TABLE ${q(name)} (
      b VARCHAR(10) NOT NULL, a INT NOT NULL, flag BIT NULL, big BIGINT NULL, price DECIMAL(12,2) NULL, cash MONEY NULL,
      r REAL NULL, f FLOAT NULL, u NVARCHAR(40) NULL, umax NVARCHAR(MAX) NULL, id UNIQUEIDENTIFIER NULL, bin VARBINARY(16) NULL,
      rv ROWVERSION, d DATE NULL, t TIME(3) NULL, dt DATETIME NULL, sdt SMALLDATETIME NULL, dt2 DATETIME2(7) NULL,
      dto DATETIMEOFFSET(3) NULL, x XML NULL, nt NTEXT NULL, h HIERARCHYID NULL, s SYSNAME NULL,
      CONSTRAINT ${dialect.quoteIdentifier(`pk_${name}`)} PRIMARY KEY (a, b))`);
    const info = await dialect.describeTable(db, { schema, name });
    expect(info.primaryKey).toEqual(['a', 'b']);
    expect(Object.fromEntries(info.columns.map((c) => [c.name, [c.sqlType, c.type]]))).toEqual({
      b: ['varchar(10)', { kind: 'string', maxLength: 10 }],
      a: ['int', { kind: 'int' }],
      flag: ['bit', { kind: 'boolean' }],
      big: ['bigint', { kind: 'long' }],
      price: ['decimal(12,2)', { kind: 'decimal', precision: 12, scale: 2 }],
      cash: ['money', { kind: 'decimal', precision: 19, scale: 4 }],
      r: ['real', { kind: 'float' }],
      f: ['float', { kind: 'double' }],
      u: ['nvarchar(40)', { kind: 'string', unicode: true, maxLength: 40 }],
      umax: ['nvarchar(max)', { kind: 'string', unicode: true }],
      id: ['uniqueidentifier', { kind: 'uuid' }],
      bin: ['varbinary(16)', { kind: 'bytes' }],
      rv: ['timestamp', { kind: 'bytes' }],
      d: ['date', { kind: 'date' }],
      t: ['time(3)', { kind: 'time', precision: 3 }],
      dt: ['datetime', { kind: 'timestamp', precision: 3 }],
      sdt: ['smalldatetime', { kind: 'timestamp', precision: 0 }],
      dt2: ['datetime2(7)', { kind: 'timestamp', precision: 7 }],
      dto: ['datetimeoffset(3)', { kind: 'timestamptz', precision: 3 }],
      x: ['xml', { kind: 'string' }],
      nt: ['ntext', { kind: 'string', unicode: true }],
      h: ['hierarchyid', { kind: 'other', sqlType: 'hierarchyid' }],
      s: ['nvarchar(128)', { kind: 'string', unicode: true, maxLength: 128 }],
    });
    expect(info.columns.find((c) => c.name === 'a')?.nullable).toBe(false);
  });

  it('names a missing table, and one without a primary key', async () => {
    await expect(dialect.describeTable(db, { schema, name: 'no_such_table' })).rejects.toThrow(`table ${schema}.no_such_table does not exist`);
    const heap = freshName('heap');
    await db.raw(`CREATE TABLE ${q(heap)} (a INT)`);
    await expect(dialect.describeTable(db, { schema, name: heap })).rejects.toThrow(`table ${schema}.${heap} has no primary key`);
  });

  it('records multi-row inserts, updates and deletes with exact text images', async () => {
    const info = await trackedTable(`id INT NOT NULL PRIMARY KEY, code CHAR(3) NULL, name NVARCHAR(50) NULL, price DECIMAL(12,2) NULL,
      amount MONEY NULL, active BIT NULL, ratio FLOAT NULL, created DATETIME2(7) NULL, updated DATETIMEOFFSET(3) NULL,
      born DATE NULL, slot TIME(3) NULL, guid UNIQUEIDENTIFIER NULL, data VARBINARY(16) NULL, legacy DATETIME NULL,
      small SMALLDATETIME NULL, notes NTEXT NULL`);
    await db.raw(`INSERT INTO ${q(info.name)} VALUES
      (1, 'ab', ?, 12.5, 1234.56, 1, 1.5, '2024-01-02T03:04:05.1234567', '2024-01-02T03:04:05.123+02:00', '2024-01-02',
       '12:34:56.789', '0F8FAD5B-D9CB-469F-A165-70867728950E', 0x00FF10, '2024-01-02T03:04:05.123', '2024-01-02T03:04:00', N'long text'),
      (2, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`, ['Zoë "quoted" \\ / ✓']);
    await db.raw(`UPDATE ${q(info.name)} SET price = 99.99, name = N'renamed'`);
    await db.raw(`DELETE FROM ${q(info.name)} WHERE id = 2`);

    const { rows } = await readChanges(info, undefined, 5);
    // One changelog row per affected row, statements in order; rows of one statement in any order.
    expect(rows.map((r) => r.op)).toEqual(['I', 'I', 'U', 'U', 'D']);
    const find = (op: string, id: string): ChangeRow => rows.find((r) => r.op === op && (r.after ?? r.before)?.id === id)!;
    const first = find('I', '1').after!;
    expect(Number(first.ratio)).toBe(1.5);
    expect(first).toEqual({
      id: '1',
      code: 'ab ',
      name: 'Zoë "quoted" \\ / ✓',
      price: '12.50',
      amount: '1234.5600',
      active: 'true',
      ratio: first.ratio,
      created: '2024-01-02 03:04:05.1234567',
      updated: '2024-01-02 01:04:05.123',
      born: '2024-01-02',
      slot: '12:34:56.789',
      guid: '0f8fad5b-d9cb-469f-a165-70867728950e',
      data: '00ff10',
      legacy: '2024-01-02 03:04:05.123',
      small: '2024-01-02 03:04:00',
      notes: 'long text',
    });
    const nulls = Object.fromEntries(info.columns.map((c) => [c.name, null]));
    expect(find('I', '2')).toMatchObject({ before: null, after: { ...nulls, id: '2', active: 'false' } });
    // ntext is invisible to AFTER triggers in `deleted`: before images leave it out.
    const { notes: _firstNotes, ...firstBefore } = first;
    expect(find('U', '1').before).toEqual(firstBefore);
    expect(find('U', '1').after).toEqual({ ...first, price: '99.99', name: 'renamed' });
    const { notes: _secondNotes, ...secondBefore } = find('U', '2').after!;
    expect(find('D', '2')).toMatchObject({ before: secondBefore, after: null });
    expect(secondBefore).toEqual({ ...nulls, notes: undefined, id: '2', active: 'false', name: 'renamed', price: '99.99' });
    expect(rows.every((r) => r.origin === null && Math.abs(r.changedAt - Date.now()) < 600_000)).toBe(true);
    expect(rows.map((r) => r.position)).toEqual([...rows.map((r) => r.position)].sort());
  });

  it('records a primary-key update as a delete of the old key and an insert of the new one', async () => {
    const info = await trackedTable('id INT NOT NULL PRIMARY KEY, v NVARCHAR(10) NULL');
    await db.raw(`INSERT INTO ${q(info.name)} VALUES (1, N'a')`);
    await db.raw(`UPDATE ${q(info.name)} SET id = 10 WHERE id = 1`);
    const { rows } = await readChanges(info, undefined, 3);
    expect(rows[0]).toMatchObject({ op: 'I', before: null, after: { id: '1', v: 'a' } });
    // The old and the new key come from one statement, so their two rows may come in either order.
    expect(rows.slice(1).map((r) => [r.op, r.before, r.after])).toEqual(
      expect.arrayContaining([
        ['D', { id: '1', v: 'a' }, null],
        ['I', null, { id: '10', v: 'a' }],
      ]),
    );
    expect(rows).toHaveLength(3);
  });

  it('records a key changed only in case or trailing spaces, under a case-insensitive collation, as a delete and an insert', async () => {
    const info = await trackedTable('code VARCHAR(10) COLLATE Latin1_General_CI_AS NOT NULL PRIMARY KEY, v NVARCHAR(10) NULL');
    await db.raw(`INSERT INTO ${q(info.name)} VALUES ('abc', N'a')`);
    await db.raw(`UPDATE ${q(info.name)} SET code = UPPER(code)`);
    await db.raw(`UPDATE ${q(info.name)} SET code = code + ' '`);
    const { rows } = await readChanges(info, undefined, 5);
    expect(rows[0]).toMatchObject({ op: 'I', after: { code: 'abc' } });
    expect(rows.slice(1, 3).map((r) => [r.op, (r.before ?? r.after)!.code])).toEqual(expect.arrayContaining([['D', 'abc'], ['I', 'ABC']]));
    expect(rows.slice(3, 5).map((r) => [r.op, (r.before ?? r.after)!.code])).toEqual(expect.arrayContaining([['D', 'ABC'], ['I', 'ABC ']]));
    expect(rows).toHaveLength(5);
  });

  it('fires its trigger first: a legacy AFTER trigger updating the same rows is recorded in its final state', async () => {
    const info = await trackedTable('id INT NOT NULL PRIMARY KEY, v NVARCHAR(10) NULL, modified INT NOT NULL DEFAULT 0');
    // The legacy application's own trigger, made after Banyan's and asking to come last.
    await db.raw(`CREATE TRIGGER ${q(`${info.name}_modified`)} ON ${q(info.name)} AFTER INSERT, UPDATE AS
      BEGIN SET NOCOUNT ON; UPDATE t SET modified = t.modified + 1 FROM ${q(info.name)} t JOIN inserted i ON i.id = t.id; END;`);
    await db.raw(`EXEC sys.sp_settriggerorder @triggername = N'${schema}.${info.name}_modified', @order = N'Last', @stmttype = N'UPDATE'`);
    await install(info); // again: the order survives a reinstall
    await db.raw(`INSERT INTO ${q(info.name)} (id, v) VALUES (1, N'a')`);
    await db.raw(`UPDATE ${q(info.name)} SET v = N'b' WHERE id = 1`);
    const { rows } = await readChanges(info, undefined, 4);
    // Each statement's own change, then the nested one of the legacy trigger: the last row holds the final state.
    const final = (await db.raw(`SELECT v, modified FROM ${q(info.name)} WHERE id = 1`)) as Array<{ v: string; modified: number }>;
    expect(rows.at(-1)!.after).toMatchObject({ v: final[0]!.v, modified: String(final[0]!.modified) });
  });

  it('refuses to install beside another trigger set to fire first, naming it', async () => {
    const name = freshName('first');
    await db.raw(`CREATE TABLE ${q(name)} (id INT NOT NULL PRIMARY KEY)`);
    await db.raw(`CREATE TRIGGER ${q(`${name}_first`)} ON ${q(name)} AFTER DELETE AS BEGIN SET NOCOUNT ON; END;`);
    await db.raw(`EXEC sys.sp_settriggerorder @triggername = N'${schema}.${name}_first', @order = N'First', @stmttype = N'DELETE'`);
    const info = await dialect.describeTable(db, { schema, name });
    await expect(install(info)).rejects.toThrow(/trigger .*_first is set to fire first on DELETE/);
  });

  it('loses nothing when a transaction stays open while later ones commit, and does not wait for it', async () => {
    const info = await trackedTable('id INT NOT NULL PRIMARY KEY');
    const open = await db.transaction();
    try {
      await open.raw(`INSERT INTO ${q(info.name)} VALUES (1)`);
      await db.raw(`INSERT INTO ${q(info.name)} VALUES (2)`);
      const early = await within(5_000, 'readChanges beside an open transaction', dialect.readChanges(logins.runner, info, undefined, 100, Date.now()));
      // Row 2 committed, but row 1 has the lower rowversion and may still commit: neither is passed yet.
      expect(early.rows).toEqual([]);
      await open.commit();
      const late = await readChanges(info, early.position, 2);
      expect(late.rows.map((r) => r.after?.id)).toEqual(['1', '2']);
    } finally {
      if (!open.isCompleted()) await open.rollback();
    }
  });

  it('tags rows with the origin of the transaction that set it, and no other transaction', async () => {
    const info = await trackedTable('id INT NOT NULL PRIMARY KEY');
    // One connection, so a forgotten clearOrigin would leak into the next transaction if it could.
    const single = createKnex({ ...config, pool: { min: 0, max: 1 } });
    try {
      await single.transaction(async (trx) => {
        await dialect.setOrigin(trx, 'banyan:test');
        await trx.raw(`INSERT INTO ${q(info.name)} VALUES (1)`);
      });
      await single.raw(`INSERT INTO ${q(info.name)} VALUES (2)`);
      await single.transaction(async (trx) => {
        await dialect.setOrigin(trx, 'banyan:test');
        await trx.raw(`INSERT INTO ${q(info.name)} VALUES (3)`);
        await dialect.clearOrigin(trx);
        await trx.raw(`INSERT INTO ${q(info.name)} VALUES (4)`);
      });
    } finally {
      await single.destroy();
    }
    const { rows } = await readChanges(info, undefined, 4);
    expect(rows.map((r) => [r.after?.id, r.origin])).toEqual([
      ['1', 'banyan:test'],
      ['2', null],
      ['3', 'banyan:test'],
      ['4', null],
    ]);
  });

  it('joins updates on every column of a composite key', async () => {
    const info = await trackedTable('tenant INT NOT NULL, code VARCHAR(10) NOT NULL, qty INT NULL, PRIMARY KEY (tenant, code)');
    await db.raw(`INSERT INTO ${q(info.name)} VALUES (1, 'a', 1), (1, 'b', 2), (2, 'a', 3)`);
    await db.raw(`UPDATE ${q(info.name)} SET qty = qty * 10 WHERE tenant = 1`);
    const { rows } = await readChanges(info, undefined, 5);
    const updates = rows.filter((r) => r.op === 'U').map((r) => [r.before, r.after]);
    expect(updates).toHaveLength(2);
    expect(updates).toEqual(
      expect.arrayContaining([
        [{ tenant: '1', code: 'a', qty: '1' }, { tenant: '1', code: 'a', qty: '10' }],
        [{ tenant: '1', code: 'b', qty: '2' }, { tenant: '1', code: 'b', qty: '20' }],
      ]),
    );
  });

  it('hands a snapshot over to the stream with nothing lost and nothing twice', async () => {
    const info = await trackedTable('id INT NOT NULL PRIMARY KEY, v NVARCHAR(10) NULL');
    await db.raw(`INSERT INTO ${q(info.name)} VALUES (1, N'one'), (2, N'two'), (3, N'three'), (4, N'four'), (5, N'five')`);
    const open = await db.transaction();
    try {
      await open.raw(`INSERT INTO ${q(info.name)} VALUES (100, N'late')`); // holds the watermark below what follows
      await db.raw(`UPDATE ${q(info.name)} SET v = N'TWO' WHERE id = 2`); // committed: in the snapshot, above the watermark
      const snapshot = await dialect.openSnapshot(logins.runner, info, Date.now());
      try {
        expect(snapshot).toMatchObject({ isolated: true });
        expect(snapshot.position).toHaveProperty('seen');
        await db.raw(`UPDATE ${q(info.name)} SET v = N'THREE' WHERE id = 3`); // after the snapshot
        const rows: Array<Record<string, string | null>> = [];
        for (let page = await snapshot.nextPage(2); page.length > 0; page = await snapshot.nextPage(2)) rows.push(...page);
        expect(rows).toEqual([
          { id: '1', v: 'one' },
          { id: '2', v: 'TWO' },
          { id: '3', v: 'three' },
          { id: '4', v: 'four' },
          { id: '5', v: 'five' },
        ]);
        expect(snapshot.estimatedRows).toBeGreaterThanOrEqual(5);
      } finally {
        await snapshot.close();
      }
      await open.commit();
      // The update of row 2 is in the snapshot (and in the position's `seen`): it must not come again.
      const streamed = await readChanges(info, snapshot.position, 2);
      expect(streamed.rows.map((r) => [r.op, r.after])).toEqual([
        ['I', { id: '100', v: 'late' }],
        ['U', { id: '3', v: 'THREE' }],
      ]);
      expect((await dialect.readChanges(logins.runner, info, streamed.position, 100, Date.now())).rows).toEqual([]);
    } finally {
      if (!open.isCompleted()) await open.rollback();
    }
  });

  it("leaves the legacy session's @@IDENTITY and SET ROWCOUNT as they were", async () => {
    const info = await trackedTable('id INT IDENTITY(1000,1) NOT NULL PRIMARY KEY, v INT NULL');
    const [inserted] = (await db.raw(`INSERT INTO ${q(info.name)} (v) VALUES (1); SELECT CAST(@@IDENTITY AS INT) AS [id];`)) as Array<{ id: number }>;
    expect(inserted!.id).toBe(1000); // the trigger's changelog insert takes no identity value
    await db.raw(`SET ROWCOUNT 10; INSERT INTO ${q(info.name)} (v) VALUES (2), (3); SET ROWCOUNT 0;`);
    const { rows } = await readChanges(info, undefined, 3);
    expect(rows.map((r) => r.after?.v)).toEqual(expect.arrayContaining(['1', '2', '3']));
  });

  it('prunes only changes below the position and older than the cut-off, in bounded statements', async () => {
    const info = await trackedTable('id INT NOT NULL PRIMARY KEY');
    await db.raw(`INSERT INTO ${q(info.name)} VALUES (1), (2), (3)`);
    const { position } = await readChanges(info, undefined, 3);
    await db.raw(`INSERT INTO ${q(info.name)} VALUES (4)`);
    expect(await dialect.pruneChangelog(logins.runner, info, position, new Date(Date.now() - 3_600_000), 100)).toBe(0);
    expect(await dialect.pruneChangelog(logins.runner, info, position, new Date(Date.now() + 60_000), 2)).toBe(2);
    expect(await dialect.pruneChangelog(logins.runner, info, position, new Date(Date.now() + 60_000), 2)).toBe(1);
    const left = (await db.raw(`SELECT COUNT(*) AS [n] FROM ${cl(info)}`)) as Array<{ n: number }>;
    expect(left[0]!.n).toBe(1);
    expect((await readChanges(info, position, 1)).rows.map((r) => r.after?.id)).toEqual(['4']);
  });

  it('installs idempotently, and a reinstall after ALTER TABLE ADD COLUMN images the new column', async () => {
    const info = await trackedTable('id INT NOT NULL PRIMARY KEY, v INT NULL');
    await db.raw(`INSERT INTO ${q(info.name)} VALUES (1, 1)`);
    await install(info);
    const triggers = (await db.raw('SELECT COUNT(*) AS [n] FROM sys.triggers WHERE [parent_id] = OBJECT_ID(?)', [q(info.name)])) as Array<{ n: number }>;
    expect(triggers[0]!.n).toBe(1);

    await db.raw(`ALTER TABLE ${q(info.name)} ADD extra NVARCHAR(10) NULL`);
    await db.raw(`UPDATE ${q(info.name)} SET v = 2`); // old trigger: no "extra" yet
    const altered = await dialect.describeTable(db, { schema, name: info.name });
    await install(altered);
    await db.raw(`UPDATE ${q(info.name)} SET extra = N'x'`);

    const { rows } = await readChanges(altered, undefined, 3);
    expect(rows.map((r) => r.after)).toEqual([
      { id: '1', v: '1' },
      { id: '1', v: '2' },
      { id: '1', v: '2', extra: 'x' },
    ]);
  });

  it('uninstalls the trigger, its record and the changelog, leaving the table writable', async () => {
    const info = await trackedTable('id INT NOT NULL PRIMARY KEY');
    for (const statement of dialect.uninstallChangelog(info)) await logins.installer.raw(statement);
    for (const statement of dialect.uninstallChangelog(info)) await logins.installer.raw(statement); // idempotent too
    const [found] = (await db.raw(
      'SELECT OBJECT_ID(?) AS [cl], (SELECT COUNT(*) FROM sys.triggers WHERE [parent_id] = OBJECT_ID(?)) AS [trg], (SELECT COUNT(*) FROM [banyan].[tracked] WHERE [object_id] = OBJECT_ID(?)) AS [tracked]',
      [cl(info), q(info.name), q(info.name)],
    )) as Array<{ cl: number | null; trg: number; tracked: number }>;
    expect(found).toEqual({ cl: null, trg: 0, tracked: 0 });
    await db.raw(`INSERT INTO ${q(info.name)} VALUES (1)`);
  });

  it('tracks x and x_seq side by side, and a table whose name holds a dot: no object of Banyan’s collides', async () => {
    const base = freshName('t');
    const names = [base, `${base}_seq`, `${base}.lines`];
    for (const name of names) await db.raw(`CREATE TABLE ${q(name)} (id INT NOT NULL PRIMARY KEY)`);
    const infos = [];
    for (const name of names) {
      const info = await dialect.describeTable(db, { schema, name });
      await install(info);
      infos.push(info);
    }
    for (const info of infos) await db.raw(`INSERT INTO ${q(info.name)} VALUES (7)`);
    for (const info of infos) expect((await readChanges(info, undefined, 10)).rows.map((r) => r.after?.id)).toEqual(['7']);
  });

  it('survives the application dropping and renaming columns: writes go on, images follow, the drift is logged', async () => {
    const info = await trackedTable('id INT NOT NULL PRIMARY KEY, keep INT NULL, gone INT NULL, old_name INT NULL');
    await db.raw(`ALTER TABLE ${q(info.name)} DROP COLUMN gone`);
    await db.raw(`EXEC sp_rename ?, N'new_name', N'COLUMN'`, [`${q(info.name)}.[old_name]`]);
    // The application's writes go on, and the images follow the table.
    await db.raw(`INSERT INTO ${q(info.name)} (id, keep, new_name) VALUES (1, 2, 3)`);
    const { rows } = await readChanges(info, undefined, 10);
    expect(rows.map((r) => r.after)).toEqual([{ id: '1', keep: '2', new_name: '3' }]);
    const drift = (await db.raw(
      `SELECT [event], [dropped], [renamed] FROM [banyan].[schema_drift] WHERE [object_id] = OBJECT_ID(?) ORDER BY [id]`,
      [q(info.name)],
    )) as Array<{ event: string; dropped: string | null; renamed: string | null }>;
    expect(drift).toEqual([
      { event: 'ALTER_TABLE', dropped: '[gone]', renamed: null },
      { event: 'RENAME', dropped: null, renamed: '[old_name] -> [new_name]' },
    ]);
  });

  it('stops when the database is behind the stored position, as after a point-in-time restore', async () => {
    const info = await trackedTable('id INT NOT NULL PRIMARY KEY');
    const ahead = { rv: '0x7FFFFFFFFFFFFFFF' };
    await expect(dialect.readChanges(logins.runner, info, ahead, 10, Date.now())).rejects.toMatchObject({ code: 'DATABASE_WENT_BACK', retriable: false });
  });
});
