import { describe, expect, it } from 'vitest';
import type { Column, TableInfo } from './dialect';
import { MysqlDialect, parseUtc } from './mysql.dialect';
import { toColumn, type MysqlCatalogColumn } from './mysql/describe';
import { advance, expireGaps, parsePosition, START, toPosition, type GapOptions, type MysqlPosition } from './mysql/gaps';
import { changelogName, imageExpression, keysetAfter, stringLiteral, textExpression } from './mysql/sql';

const dialect = new MysqlDialect();
const col = (name: string, type: Column['type'], sqlType = 'x'): Column => ({ name, sqlType, type, nullable: true });
const users: TableInfo = {
  schema: 'legacy',
  name: 'users',
  primaryKey: ['id'],
  columns: [col('id', { kind: 'int' }), col('name', { kind: 'string' })],
};

describe('MysqlDialect identifiers', () => {
  it('quotes with backticks and doubles a backtick inside, so a name cannot close the quote', () => {
    expect(dialect.quoteIdentifier('users')).toBe('`users`');
    expect(dialect.quoteIdentifier('a`b')).toBe('`a``b`');
    expect(dialect.quoteIdentifier('x`; DROP TABLE t; -- ')).toBe('`x``; DROP TABLE t; -- `');
  });

  it('writes names other than plain words as hex literals in trigger bodies', () => {
    expect(stringLiteral('first_name')).toBe(`'first_name'`);
    expect(stringLiteral(`it's\\`)).toBe(`_utf8mb4 X'${Buffer.from(`it's\\`).toString('hex')}'`);
    expect(stringLiteral('naïve')).toMatch(/^_utf8mb4 X'[0-9a-f]+'$/);
  });

  it('keeps changelog and trigger names within 64 characters, distinct for distinct tables', () => {
    expect(changelogName('users')).toBe('banyan_cl_users');
    const a = changelogName('x'.repeat(60));
    const b = changelogName(`${'x'.repeat(59)}y`);
    expect(a.length + '_ins_new'.length).toBeLessThanOrEqual(64);
    expect(a).not.toBe(b);
    expect(dialect.changelogTable({ schema: 's', name: 'users' })).toEqual({ schema: 's', name: 'banyan_cl_users' });
  });
});

describe('MysqlDialect DDL', () => {
  const evil: TableInfo = {
    schema: 'le`gacy',
    name: 'us`ers',
    primaryKey: ['i`d'],
    columns: [col('i`d', { kind: 'int' }), col("na'me", { kind: 'string' })],
  };

  it('creates the changelog table and three AFTER triggers with every identifier quoted', () => {
    const ddl = dialect.installChangelog(evil);
    expect(ddl[0]).toContain('CREATE TABLE IF NOT EXISTS `le``gacy`.`banyan_cl_us``ers`');
    expect(ddl[0]).toMatch(/change_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT/);
    expect(ddl[0]).toContain('ENGINE=InnoDB');
    const creates = ddl.filter((s) => s.startsWith('CREATE TRIGGER'));
    expect(creates.map((s) => /^CREATE TRIGGER (\S+) AFTER (\w+) ON (\S+)/.exec(s)!.slice(1))).toEqual([
      ['`le``gacy`.`banyan_cl_us``ers_ins_new`', 'INSERT', '`le``gacy`.`us``ers`'],
      ['`le``gacy`.`banyan_cl_us``ers_ins`', 'INSERT', '`le``gacy`.`us``ers`'],
      ['`le``gacy`.`banyan_cl_us``ers_upd_new`', 'UPDATE', '`le``gacy`.`us``ers`'],
      ['`le``gacy`.`banyan_cl_us``ers_upd`', 'UPDATE', '`le``gacy`.`us``ers`'],
      ['`le``gacy`.`banyan_cl_us``ers_del_new`', 'DELETE', '`le``gacy`.`us``ers`'],
      ['`le``gacy`.`banyan_cl_us``ers_del`', 'DELETE', '`le``gacy`.`us``ers`'],
    ]);
    expect(creates[1]).toContain("NEW.`i``d`");
    // The JSON key is a hex literal; inside backticks a quote is just a character.
    expect(creates[1]).toContain("_utf8mb4 X'6e61276d65', NEW.`na'me`");
    expect(creates[3]).toMatch(/VALUES \('U', UTC_TIMESTAMP\(6\), LEFT\(@banyan_origin, 128\), IF\(@banyan_origin IS NULL, NULL, LEFT\(USER\(\), 512\)\), JSON_OBJECT\(.*OLD\..*\), JSON_OBJECT\(.*NEW\./s);
    expect(creates[5]).toMatch(/VALUES \('D', .*JSON_OBJECT\(.*OLD\..*\), NULL\)$/s);
  });

  it('replaces each trigger through a bridge, so a write is never left unrecorded', () => {
    const ddl = dialect.installChangelog(users).slice(1, 6);
    expect(ddl.map((s) => s.split(' AFTER ')[0])).toEqual([
      'DROP TRIGGER IF EXISTS `legacy`.`banyan_cl_users_ins_new`',
      'CREATE TRIGGER `legacy`.`banyan_cl_users_ins_new`',
      'DROP TRIGGER IF EXISTS `legacy`.`banyan_cl_users_ins`',
      'CREATE TRIGGER `legacy`.`banyan_cl_users_ins`',
      'DROP TRIGGER `legacy`.`banyan_cl_users_ins_new`',
    ]);
  });

  it('drops every trigger it may have made and then the changelog table', () => {
    const ddl = dialect.uninstallChangelog({ name: 'users' });
    expect(ddl).toHaveLength(7);
    expect(ddl.slice(0, 6).every((s) => s.startsWith('DROP TRIGGER IF EXISTS `banyan_cl_users_'))).toBe(true);
    expect(ddl[6]).toBe('DROP TABLE IF EXISTS `banyan_cl_users`');
  });

  it('builds text expressions per kind, the same for triggers and snapshots', () => {
    expect(textExpression(col('b', { kind: 'bytes' }), 'NEW.`b`')).toBe('LOWER(HEX(NEW.`b`))');
    expect(textExpression(col('f', { kind: 'boolean' }), '`f`')).toBe("CASE `f` + 0 WHEN 1 THEN 'true' WHEN 0 THEN 'false' END");
    expect(textExpression(col('t', { kind: 'timestamptz', precision: 3 }), '`t`')).toContain('UNIX_TIMESTAMP(`t`)');
    expect(textExpression(col('g', { kind: 'other', sqlType: 'point' }), '`g`')).toBe('ST_AsText(`g`)');
    expect(textExpression(col('d', { kind: 'decimal', precision: 12, scale: 2 }), '`d`')).toBe('CAST(`d` AS CHAR)');
    expect(imageExpression(users.columns)).toBe("JSON_OBJECT('id', CAST(`id` AS CHAR), 'name', `name`)");
  });
});

describe('MysqlDialect keyset pagination', () => {
  it('compares one key directly', () => {
    expect(keysetAfter(['id'])).toEqual({ sql: '`id` > ?', bindingOrder: [0] });
  });

  it('expands a composite key so MariaDB can range-scan it', () => {
    expect(keysetAfter(['a', 'b', 'c'])).toEqual({
      sql: '`a` >= ? AND (`a` > ? OR (`a` = ? AND (`b` > ? OR (`b` = ? AND `c` > ?))))',
      bindingOrder: [0, 0, 0, 1, 1, 2],
    });
  });
});

describe('MysqlDialect column kinds', () => {
  const catalog = (data_type: string, column_type: string, extra: Partial<MysqlCatalogColumn> = {}): MysqlCatalogColumn => ({
    name: 'c', data_type, column_type, is_nullable: 'YES', max_length: null, charset: null,
    numeric_precision: null, numeric_scale: null, datetime_precision: null, ...extra,
  });
  const kind = (c: MysqlCatalogColumn, json = false) => toColumn(c, json).type;

  it('maps integer types by their range', () => {
    expect(kind(catalog('tinyint', 'tinyint(1)'))).toEqual({ kind: 'int' });
    expect(kind(catalog('int', 'int(11)'))).toEqual({ kind: 'int' });
    expect(kind(catalog('int', 'int(10) unsigned'))).toEqual({ kind: 'long' });
    expect(kind(catalog('mediumint', 'mediumint(8) unsigned'))).toEqual({ kind: 'int' });
    expect(kind(catalog('bigint', 'bigint(20) unsigned'))).toEqual({ kind: 'long' });
  });

  it('maps the other families', () => {
    expect(kind(catalog('decimal', 'decimal(12,2)', { numeric_precision: '12', numeric_scale: '2' }))).toEqual({ kind: 'decimal', precision: 12, scale: 2 });
    expect(kind(catalog('bit', 'bit(1)'))).toEqual({ kind: 'boolean' });
    expect(kind(catalog('bit', 'bit(8)'))).toEqual({ kind: 'other', sqlType: 'bit(8)' });
    expect(kind(catalog('varchar', 'varchar(20)', { max_length: '20', charset: 'utf8mb4' }))).toEqual({ kind: 'string', maxLength: 20, unicode: true });
    expect(kind(catalog('char', 'char(2)', { max_length: 2, charset: 'latin1' }))).toEqual({ kind: 'string', maxLength: 2, unicode: false });
    expect(kind(catalog('varbinary', 'varbinary(16)'))).toEqual({ kind: 'bytes' });
    expect(kind(catalog('time', 'time(2)', { datetime_precision: 2 }))).toEqual({ kind: 'time', precision: 2 });
    expect(kind(catalog('datetime', 'datetime(6)', { datetime_precision: 6 }))).toEqual({ kind: 'timestamp', precision: 6 });
    expect(kind(catalog('timestamp', 'timestamp', { datetime_precision: 0 }))).toEqual({ kind: 'timestamptz', precision: 0 });
    expect(kind(catalog('json', 'json'))).toEqual({ kind: 'json' });
    expect(kind(catalog('longtext', 'longtext'), true)).toEqual({ kind: 'json' });
    expect(kind(catalog('geometry', 'geometry'))).toEqual({ kind: 'other', sqlType: 'geometry' });
  });
});

describe('MysqlDialect gap watermark', () => {
  const options: GapOptions = { gapWaitMs: 1000, gapRetainMs: 60_000, maxGaps: 3 };
  const at = (next: number, gaps: MysqlPosition['gaps'] = [], waiting: MysqlPosition['waiting'] = []): MysqlPosition => ({ next, gaps, waiting });

  it('emits a contiguous run', () => {
    expect(advance(START, [1, 2, 3], 0, options)).toMatchObject({ emit: 3, position: at(3), gapsPassed: 0, lateRows: 0 });
  });

  it('stops at a fresh gap and times every gap it saw, all at once', () => {
    const first = advance(START, [1, 3, 4, 6], 100, options);
    expect(first).toMatchObject({ emit: 1, position: at(1, [], [{ from: 2, to: 2, since: 100 }, { from: 5, to: 5, since: 100 }]) });
    // 2 commits; 5 is still missing, and keeps the time it was first seen.
    const second = advance(first.position, [2, 3, 4, 6], 600, options);
    expect(second).toMatchObject({ emit: 3, position: at(4, [], [{ from: 5, to: 5, since: 100 }]) });
    // Past the wait it is passed and remembered.
    const third = advance(second.position, [6, 7], 1100, options);
    expect(third).toMatchObject({ emit: 2, position: at(7, [{ from: 5, to: 5, since: 100 }]), gapsPassed: 1 });
  });

  it('passes the old part of a gap and waits for the part first seen now', () => {
    // 2 was first seen missing at 0, when a full page ended at 3; this read reaches 8, so 4..7
    // are first seen missing now.
    const p = at(1, [], [{ from: 2, to: 2, since: 0 }]);
    const step = advance(p, [3, 8], 1000, options);
    expect(step).toMatchObject({ emit: 1, position: at(3, [{ from: 2, to: 2, since: 0 }], [{ from: 4, to: 7, since: 1000 }]), gapsPassed: 1 });
  });

  it('emits late rows first and splits the remembered gap around them', () => {
    const p = at(10, [{ from: 3, to: 6, since: 0 }]);
    const step = advance(p, [4, 11], 5, options);
    expect(step).toMatchObject({ emit: 2, lateRows: 1, position: at(11, [{ from: 3, to: 3, since: 0 }, { from: 5, to: 6, since: 0 }]) });
  });

  it('keeps what it knew of ids beyond a read that saw nothing new', () => {
    const p = at(1, [], [{ from: 2, to: 4, since: 7 }]);
    expect(advance(p, [], 8, options).position).toEqual(p);
  });

  it('expires remembered gaps after gapRetainMs, and the oldest first when there are too many', () => {
    const p = at(20, [{ from: 2, to: 2, since: 0 }, { from: 4, to: 4, since: 50_000 }]);
    expect(expireGaps(p, 60_000, options.gapRetainMs)).toEqual({ position: at(20, [{ from: 4, to: 4, since: 50_000 }]), expired: 1 });
    const crowded = at(10, [{ from: 2, to: 2, since: 1 }, { from: 4, to: 4, since: 2 }, { from: 6, to: 6, since: 3 }]);
    const step = advance(crowded, [12], 5000, { ...options, gapWaitMs: 0 });
    expect(step.gapsDropped).toBe(1);
    expect(step.position.gaps.map((g) => g.from)).toEqual([4, 6, 11]);
  });

  it('round-trips positions and refuses foreign ones', () => {
    const p = at(5, [{ from: 2, to: 3, since: 9 }]);
    expect(parsePosition(toPosition(p))).toEqual(p);
    expect(parsePosition(undefined)).toEqual(START);
    expect(() => parsePosition({ after: '12' })).toThrow(/not a MySQL changelog position/);
  });

  it('reads the changelog time as UTC', () => {
    expect(parseUtc('2024-03-10 07:34:56.789123')).toBe(Date.UTC(2024, 2, 10, 7, 34, 56, 789));
    expect(parseUtc('2024-03-10 07:34:56')).toBe(Date.UTC(2024, 2, 10, 7, 34, 56));
  });
});
