import type { Knex } from 'knex';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import type { ChangeRow, Position, TableInfo } from '../../src/dialects/dialect';
import { MysqlDialect } from '../../src/dialects/mysql.dialect';
import { databaseSchema } from '../../src/config';
import { freshName } from '../helpers';

// MariaDB on 127.0.0.1:3306 (root, no password), as on the development machines and in CI.
const connect = (database: string) => createKnex(databaseSchema.parse({ dialect: 'mariadb', database, user: 'root', pool: { max: 6 } }));
const admin = connect('mysql');
let database: string;
let db: Knex;
/** Transactions a test holds open; rolled back after it, so a failing test cannot hang the pool. */
let held: Knex.Transaction[];

async function hold(): Promise<Knex.Transaction> {
  const trx = await db.transaction();
  held.push(trx);
  return trx;
}

beforeEach(async () => {
  database = freshName('banyan_t');
  await admin.raw(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
  db = connect(database);
  held = [];
});

afterEach(async () => {
  for (const trx of held) if (!trx.isCompleted()) await trx.rollback().catch(() => undefined);
  await db.destroy();
  await admin.raw(`DROP DATABASE IF EXISTS \`${database}\``);
});

afterAll(async () => {
  await admin.destroy();
});

const T0 = 1_700_000_000_000;

async function track(dialect: MysqlDialect, name: string, ddl: string): Promise<TableInfo> {
  await db.raw(ddl);
  const table = await dialect.describeTable(db, { name });
  for (const statement of dialect.installChangelog(table)) await db.raw(statement);
  return table;
}

/** Reads until a read brings nothing new; returns the rows and the last position. */
async function drain(dialect: MysqlDialect, table: TableInfo, from: Position | undefined, now: number) {
  const rows: ChangeRow[] = [];
  let position = from;
  for (;;) {
    const batch = await dialect.readChanges(db, table, position, 5000, now);
    rows.push(...batch.rows);
    if (batch.rows.length === 0 && JSON.stringify(batch.position) === JSON.stringify(position)) return { rows, position: batch.position };
    position = batch.position;
  }
}

describe('MysqlDialect on MariaDB', () => {
  it('records inserts, updates and deletes with the documented text of every kind', async () => {
    const dialect = new MysqlDialect();
    const table = await track(
      dialect,
      'items',
      `CREATE TABLE items (
         id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
         price DECIMAL(12,2), created DATETIME(6), seen TIMESTAMP(3) NULL, active BIT(1),
         label VARCHAR(50) CHARACTER SET utf8mb4, raw VARBINARY(16), born DATE, at_time TIME(2),
         big BIGINT, ratio DOUBLE, doc JSON, flag TINYINT(1)
       ) ENGINE=InnoDB`,
    );
    expect(Object.fromEntries(table.columns.map((c) => [c.name, c.type.kind]))).toEqual({
      id: 'long', price: 'decimal', created: 'timestamp', seen: 'timestamptz', active: 'boolean', label: 'string',
      raw: 'bytes', born: 'date', at_time: 'time', big: 'long', ratio: 'double', doc: 'json', flag: 'int',
    });

    await db.transaction(async (trx) => {
      // The writer's session zone must not leak into the UTC text of a TIMESTAMP.
      await trx.raw(`SET time_zone = '+05:00'`);
      await trx.raw(
        `INSERT INTO items VALUES (18446744073709551615, -1234.50, '2024-01-02 03:04:05.123456', '2024-03-10 12:34:56.789', b'1',
           'héllo 😀 "q" \\\\', X'00FF10', '1999-12-31', '-12:03:04.5', 9007199254740993, 0.1, '{"a": [1, 2.50]}', 1)`,
      );
      await trx.raw('INSERT INTO items (id) VALUES (2)');
    });
    await db.raw(`UPDATE items SET price = 7, label = NULL, active = b'0' WHERE id = 18446744073709551615`);
    // A no-op update is recorded too: deciding what changed is the transform's job.
    await db.raw('UPDATE items SET flag = flag WHERE id = 2');
    await db.raw('DELETE FROM items WHERE id = 2');

    const { rows } = await drain(dialect, table, undefined, Date.now());
    const full = {
      id: '18446744073709551615', price: '-1234.50', created: '2024-01-02 03:04:05.123456', seen: '2024-03-10 07:34:56.789',
      active: 'true', label: 'héllo 😀 "q" \\', raw: '00ff10', born: '1999-12-31', at_time: '-12:03:04.50',
      big: '9007199254740993', ratio: '0.1', doc: '{"a": [1, 2.50]}', flag: '1',
    };
    const empty = Object.fromEntries(Object.keys(full).map((k) => [k, k === 'id' ? '2' : null]));
    expect(rows.map((r) => [r.op, r.before, r.after])).toEqual([
      ['I', null, full],
      ['I', null, empty],
      ['U', full, { ...full, price: '7.00', label: null, active: 'false' }],
      ['U', empty, empty],
      ['D', empty, null],
    ]);
    expect(rows.map((r) => r.position)).toEqual([1, 2, 3, 4, 5].map((n) => String(n).padStart(20, '0')));
    for (const r of rows) expect(Math.abs(r.changedAt - Date.now())).toBeLessThan(60_000);
  });

  describe('a transaction held open while later ones commit', () => {
    async function setup() {
      const dialect = new MysqlDialect({ gapWaitMs: 1000, gapRetainMs: 60_000 });
      const table = await track(dialect, 't', 'CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB');
      const slow = await hold();
      await slow.raw(`INSERT INTO t VALUES (1, 'slow')`);
      await db.raw(`INSERT INTO t VALUES (2, 'b')`);
      await db.raw(`INSERT INTO t VALUES (3, 'c')`);
      const first = await dialect.readChanges(db, table, undefined, 5000, T0);
      expect(first.rows).toEqual([]);
      const still = await dialect.readChanges(db, table, first.position, 5000, T0 + 500);
      expect(still.rows).toEqual([]);
      expect(still.position).toBe(first.position);
      return { dialect, table, slow, position: still.position };
    }
    const ids = (rows: ChangeRow[]) => rows.map((r) => r.after?.id);

    it('delivers it first when it commits within the wait', async () => {
      const { dialect, table, slow, position } = await setup();
      await slow.commit();
      const batch = await dialect.readChanges(db, table, position, 5000, T0 + 600);
      expect(ids(batch.rows)).toEqual(['1', '2', '3']);
      expect(batch.notes).toBeUndefined();
    });

    it('passes the gap after the wait, then delivers the late commit exactly once', async () => {
      const { dialect, table, slow, position } = await setup();
      const passed = await dialect.readChanges(db, table, position, 5000, T0 + 1000);
      expect(ids(passed.rows)).toEqual(['2', '3']);
      expect(passed.notes).toEqual({ gapsPassed: 1 });
      expect(passed.position).toMatchObject({ next: 3, gaps: [{ from: 1, to: 1, since: T0 }] });

      await db.raw(`INSERT INTO t VALUES (4, 'd')`);
      await slow.commit();
      const late = await dialect.readChanges(db, table, passed.position, 5000, T0 + 5000);
      expect(ids(late.rows)).toEqual(['1', '4']);
      expect(late.rows[0]).toMatchObject({ op: 'I', position: '00000000000000000001', after: { id: '1', v: 'slow' } });
      expect(late.notes).toEqual({ lateRows: 1 });
      expect(late.position).toMatchObject({ next: 4, gaps: [] });
      expect((await drain(dialect, table, late.position, T0 + 6000)).rows).toEqual([]);
    });
  });

  it('delivers every committed change of concurrent, slow and rolled-back writers once, each row in order', async () => {
    const dialect = new MysqlDialect({ gapWaitMs: 50, gapRetainMs: 24 * 3_600_000 });
    await db.raw('CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
    await db.raw('INSERT INTO t VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0), (8, 0), (9, 0), (10, 0), (11, 0)');
    const table = await dialect.describeTable(db, { name: 't' });
    for (const statement of dialect.installChangelog(table)) await db.raw(statement);
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    // Held open by the test until the reader has passed its change id, so that change is late every
    // time, however fast or slow the writers are. Row 11 is its own: no writer waits on its lock.
    const slow = await hold();
    await slow.raw('UPDATE t SET v = v + 1 WHERE id = 11');
    const [[drawn]] = (await slow.raw('SELECT MAX(change_id) AS id FROM banyan_cl_t')) as [Array<{ id: number | string }>];
    const slowId = Number(drawn!.id);
    let committed = 0;
    const writer = async () => {
      for (let n = 0; n < 25; n++) {
        const trx = await hold();
        try {
          let updates = 0;
          for (let j = 1 + Math.floor(Math.random() * 3); j > 0; j--) {
            await trx.raw('UPDATE t SET v = v + 1 WHERE id = ?', [1 + Math.floor(Math.random() * 10)]);
            updates++;
            await pause(Math.random() * 5);
          }
          // Each writer's first transaction commits, so there are later ids for the reader to pass.
          if (n > 0 && Math.random() < 0.1) await trx.rollback();
          else {
            await trx.commit();
            committed += updates;
          }
        } catch {
          // A deadlock victim: InnoDB rolled it back.
          if (!trx.isCompleted()) await trx.rollback().catch(() => undefined);
        }
      }
    };
    // The reader's clock is the test's: each read moves it 10 ms on, so a gap is passed after five
    // reads that still miss it, whatever the machine's speed.
    let clock = T0;
    const rows: ChangeRow[] = [];
    let position: Position | undefined;
    let late = 0;
    const read = async (step: number) => {
      clock += step;
      const batch = await dialect.readChanges(db, table, position, 5000, clock);
      rows.push(...batch.rows);
      late += batch.notes?.lateRows ?? 0;
      const unchanged = JSON.stringify(batch.position) === JSON.stringify(position);
      position = batch.position;
      return batch.rows.length === 0 && unchanged;
    };
    const passedSlow = () => (position as { gaps: Array<{ from: number; to: number }> } | undefined)?.gaps.some((g) => g.from <= slowId && slowId <= g.to);
    let writing = true;
    const reader = async () => {
      while (writing || !slow.isCompleted()) {
        if (await read(10)) await pause(5);
        if (!slow.isCompleted() && passedSlow()) {
          await slow.commit();
          committed += 1;
        }
      }
      // Every transaction has ended: moving the clock a whole gap wait per read, the reads pass
      // what was rolled back and bring the late rows, until one finds nothing new.
      while (!(await read(50)));
    };
    const reading = reader();
    await Promise.all(Array.from({ length: 6 }, () => writer()));
    writing = false;
    await reading;

    expect(new Set(rows.map((r) => r.position)).size).toBe(rows.length);
    expect(rows).toHaveLength(committed);
    const last = new Map<string, number>();
    for (const r of rows) {
      const id = r.after!.id!;
      expect(Number(r.before!.v), `row ${id}: a change is missing or out of order`).toBe(last.get(id) ?? 0);
      last.set(id, Number(r.after!.v));
    }
    const [actual] = (await db.raw('SELECT CAST(id AS CHAR) AS id, v FROM t')) as [Array<{ id: string; v: number }>];
    for (const row of actual) expect(last.get(row.id) ?? 0).toBe(row.v);
    expect(late).toBeGreaterThanOrEqual(1);
    expect(rows.find((r) => Number(r.position) === slowId)?.after).toEqual({ id: '11', v: '1' });
  });

  it('forgets a rolled-back gap after gapRetainMs', async () => {
    const dialect = new MysqlDialect({ gapWaitMs: 0, gapRetainMs: 5000 });
    const table = await track(dialect, 't', 'CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB');
    await db.transaction(async (trx) => {
      await trx.raw('INSERT INTO t VALUES (1)');
      await trx.rollback();
    }).catch(() => undefined);
    await db.raw('INSERT INTO t VALUES (2)');

    const passed = await dialect.readChanges(db, table, undefined, 5000, T0);
    expect(passed.rows.map((r) => r.position)).toEqual(['00000000000000000002']);
    expect(passed.position).toMatchObject({ next: 2, gaps: [{ from: 1, to: 1, since: T0 }] });
    const kept = await dialect.readChanges(db, table, passed.position, 5000, T0 + 4999);
    expect(kept.position).toBe(passed.position);
    const expired = await dialect.readChanges(db, table, kept.position, 5000, T0 + 5000);
    expect(expired.notes).toEqual({ gapsExpired: 1 });
    expect(expired.position).toEqual({ next: 2, gaps: [], waiting: [] });
  });

  it('records the origin tag of a tagged transaction, and none once it is cleared', async () => {
    const dialect = new MysqlDialect();
    const table = await track(dialect, 't', 'CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB');
    await db.transaction(async (trx) => {
      await dialect.setOrigin(trx, 'banyan:salesforce');
      await trx.raw('INSERT INTO t VALUES (1)');
      await dialect.clearOrigin(trx);
      await trx.raw('INSERT INTO t VALUES (2)');
    });
    const { rows } = await drain(dialect, table, undefined, Date.now());
    expect(rows.map((r) => r.origin)).toEqual(['banyan:salesforce', null]);
  });

  it('tracks and pages a table with a composite primary key', async () => {
    const dialect = new MysqlDialect();
    const table = await track(
      dialect,
      'stock',
      'CREATE TABLE stock (tenant INT, code VARCHAR(10), qty INT, PRIMARY KEY (tenant, code)) ENGINE=InnoDB',
    );
    expect(table.primaryKey).toEqual(['tenant', 'code']);
    const keys = [[1, 'b'], [1, 'a'], [2, 'a'], [1, 'c'], [3, 'z'], [2, 'b'], [2, 'c']];
    for (const [tenant, code] of keys) await db.raw('INSERT INTO stock VALUES (?, ?, 0)', [tenant!, code!]);
    await db.raw(`UPDATE stock SET qty = 5 WHERE tenant = 2 AND code = 'b'`);
    const { rows } = await drain(dialect, table, undefined, Date.now());
    expect(rows.at(-1)).toMatchObject({ op: 'U', before: { tenant: '2', code: 'b', qty: '0' }, after: { tenant: '2', code: 'b', qty: '5' } });

    const snapshot = await dialect.openSnapshot(db, table, Date.now());
    const pages: string[][] = [];
    try {
      for (let page = await snapshot.nextPage(3); page.length; page = await snapshot.nextPage(3)) pages.push(page.map((r) => `${r.tenant}${r.code}`));
    } finally {
      await snapshot.close();
    }
    expect(pages).toEqual([['1a', '1b', '1c'], ['2a', '2b', '2c'], ['3z']]);
    expect(snapshot.estimatedRows).toBe(7);
  });

  it('gives, from a snapshot and the changes after its position, each row once in its final state', async () => {
    const dialect = new MysqlDialect({ gapWaitMs: 0 });
    const table = await track(dialect, 't', 'CREATE TABLE t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB');
    for (let id = 1; id <= 20; id++) await db.raw('INSERT INTO t VALUES (?, ?)', [id, id]);
    // In flight while the snapshot opens: its change_id is below the snapshot's highest one.
    const inFlight = await hold();
    await inFlight.raw('UPDATE t SET v = 500 WHERE id = 5');
    await db.raw('INSERT INTO t VALUES (21, 21)');

    const snapshot = await dialect.openSnapshot(db, table, T0);
    await inFlight.commit();
    await db.raw('UPDATE t SET v = 100 WHERE id = 1');
    await db.raw('DELETE FROM t WHERE id = 2');
    await db.raw('INSERT INTO t VALUES (22, 22)');

    const state = new Map<string, string | null>();
    try {
      for (let page = await snapshot.nextPage(6); page.length; page = await snapshot.nextPage(6)) {
        for (const row of page) state.set(row.id!, row.v!);
      }
    } finally {
      await snapshot.close();
    }
    expect(state.get('5')).toBe('5');
    expect(state.has('21')).toBe(true);

    // As if the snapshot took an hour, longer than gapRetainMs: the in-flight change still comes.
    const { rows } = await drain(dialect, table, snapshot.position, T0 + 3_600_000);
    for (const change of rows) {
      const id = (change.after ?? change.before)!.id!;
      // A change the snapshot already holds would show up here as a second insert of its row.
      if (change.op === 'I') expect(state.has(id), `insert of ${id} doubled`).toBe(false);
      else expect(state.get(id), `${change.op} of ${id} before its row`).toBe(change.before!.v);
      if (change.op === 'D') state.delete(id);
      else state.set(id, change.after!.v!);
    }
    expect(rows.map((r) => `${r.op}${(r.after ?? r.before)!.id}`)).toEqual(['U5', 'U1', 'D2', 'I22']);
    const [actual] = (await db.raw('SELECT CAST(id AS CHAR) AS id, CAST(v AS CHAR) AS v FROM t ORDER BY t.id')) as [Array<{ id: string; v: string }>];
    expect([...state].sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual(actual.map((r) => [r.id, r.v]));
  });

  it('prunes only what lies below the position and its remembered gaps', async () => {
    const dialect = new MysqlDialect();
    const table = await track(dialect, 't', 'CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB');
    for (let id = 1; id <= 6; id++) await db.raw('INSERT INTO t VALUES (?)', [id]);
    const { position } = await drain(dialect, table, undefined, Date.now());
    await db.raw('INSERT INTO t VALUES (7), (8)');
    const future = new Date(Date.now() + 3_600_000);
    const remaining = async () => ((await db.raw('SELECT change_id FROM banyan_cl_t ORDER BY change_id')) as [Array<{ change_id: string }>])[0].map((r) => Number(r.change_id));

    expect(await dialect.pruneChangelog(db, table, { next: 5, gaps: [{ from: 3, to: 3, since: 0 }], waiting: [] }, future, 100)).toBe(2);
    expect(await dialect.pruneChangelog(db, table, position!, new Date(Date.now() - 3_600_000), 100)).toBe(0);
    expect(await dialect.pruneChangelog(db, table, position!, future, 3)).toBe(3);
    expect(await remaining()).toEqual([6, 7, 8]);
    expect(await dialect.pruneChangelog(db, table, position!, future, 100)).toBe(1);
    expect(await remaining()).toEqual([7, 8]);
  });

  it('installs idempotently, follows an added column, and uninstalls', async () => {
    const dialect = new MysqlDialect();
    const table = await track(dialect, 't', 'CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB');
    for (const statement of dialect.installChangelog(table)) await db.raw(statement);
    const triggers = async () =>
      ((await db.raw('SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY 1', [database])) as [Array<{ name: string }>])[0].map((r) => r.name);
    expect(await triggers()).toEqual(['banyan_cl_t_del', 'banyan_cl_t_ins', 'banyan_cl_t_upd']);
    await db.raw('INSERT INTO t VALUES (1)');

    await db.raw(`ALTER TABLE t ADD COLUMN note VARCHAR(20) NULL DEFAULT 'new'`);
    const altered = await dialect.describeTable(db, { name: 't' });
    for (const statement of dialect.installChangelog(altered)) await db.raw(statement);
    await db.raw('INSERT INTO t (id) VALUES (2)');

    const { rows } = await drain(dialect, altered, undefined, Date.now());
    expect(rows.map((r) => r.after)).toEqual([{ id: '1' }, { id: '2', note: 'new' }]);

    for (const statement of dialect.uninstallChangelog({ name: 't' })) await db.raw(statement);
    expect(await triggers()).toEqual([]);
    const [tables] = (await db.raw(`SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE 'banyan%'`, [database])) as [unknown[]];
    expect(tables).toEqual([]);
  });

  it('names the table it cannot track', async () => {
    const dialect = new MysqlDialect();
    await expect(dialect.describeTable(db, { name: 'nope' })).rejects.toThrow('table nope does not exist');
    await db.raw('CREATE TABLE loose (a INT) ENGINE=InnoDB');
    await expect(dialect.describeTable(db, { schema: database, name: 'loose' })).rejects.toThrow(`table ${database}.loose has no primary key`);
  });
});
