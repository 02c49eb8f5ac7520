import knex from 'knex';
import { describe, expect, it } from 'vitest';
import { BadRecordError } from '../../core';
import type { Dialect, TableInfo } from '../dialect';
import { MssqlDialect } from '../mssql.dialect';
import { changeRow } from './position';
import { readChangesQuery } from './queries';
import { qualified } from './sql';
import { columnFromCatalog } from './types';

/**
 * Who may tag a write (issue 12, item 10): the trigger records the login that wrote with every
 * origin tag, the poller reads it, and only Banyan's own login is trusted. No server here: the
 * generated SQL is what is checked.
 */
const dialect: Dialect = new MssqlDialect();
const compiler = knex({ client: 'mssql' });

const accounts: TableInfo = {
  schema: 'crm',
  name: 'accounts',
  primaryKey: ['id'],
  columns: [
    columnFromCatalog({ name: 'id', typeName: 'int', baseTypeName: 'int', isAssemblyType: false, maxLength: 4, precision: 10, scale: 0, nullable: false }),
    columnFromCatalog({ name: 'name', typeName: 'nvarchar', baseTypeName: 'nvarchar', isAssemblyType: false, maxLength: 100, precision: 0, scale: 0, nullable: true }),
  ],
};

const statements = dialect.installChangelog(accounts);
/** Wherever the changelog lives (its name is the dialect's business), as the statements write it. */
const cl = qualified(dialect.changelogTable(accounts));
const changelog = statements.find((s) => s.includes(`CREATE TABLE ${cl} (`))!;
const trigger = statements.find((s) => s.startsWith('CREATE OR ALTER TRIGGER'))!;

describe('SQL Server: the changelog records who wrote a tagged change', () => {
  it('creates the changelog with an origin_user column the size of a login name, before the trigger that writes it', () => {
    expect(changelog).toContain('\n    [origin] NVARCHAR(128) NULL,\n    [origin_user] NVARCHAR(128) NULL,\n');
    // In an earlier batch: CREATE TRIGGER checks the columns of a table that exists.
    expect(statements.indexOf(changelog)).toBeLessThan(statements.indexOf(trigger));
    // Run through knex.raw: no '?' of a name may turn into a parameter.
    expect(compiler.raw(changelog).toSQL().toNative().sql).not.toContain('@p0');
  });

  it('records ORIGINAL_LOGIN() with a tag, and NULL without one', () => {
    expect(trigger).toContain('DECLARE @origin_user NVARCHAR(128) = CASE WHEN @origin IS NOT NULL THEN ORIGINAL_LOGIN() END;');
    // Not SUSER_SNAME() or a user function: EXECUTE AS would change those.
    expect(trigger).not.toMatch(/SUSER_S?NAME|CURRENT_USER|SESSION_USER|SYSTEM_USER/);
    expect(trigger).toContain(`INSERT INTO ${cl} ([op], [origin], [origin_user], [before_image], [after_image])`);
    // The values in the same order as the columns: op, @origin, @origin_user, the images.
    const values = trigger.slice(trigger.indexOf('  SELECT\n'), trigger.indexOf('FROM inserted'));
    expect(values.indexOf('@origin,')).toBeGreaterThan(values.indexOf("'I'"));
    expect(values.indexOf('@origin_user,')).toBeGreaterThan(values.indexOf('@origin,'));
    expect(values.indexOf('[d].[id] IS NOT NULL THEN')).toBeGreaterThan(values.indexOf('@origin_user,'));
  });

  it('reads origin_user with each change', () => {
    expect(readChangesQuery(accounts, '0x0000000000000000', 10).sql).toContain('[origin], [origin_user], [before_image], [after_image]');
  });

  it('hands the writer on as the row’s originUser, and refuses one that is not text', () => {
    const record = { rv: '0x00000000000007D1', op: 'U', changed_ms: '5', origin: 'banyan', origin_user: 'CORP\\mallory', before_image: '{}', after_image: '{}' };
    expect(changeRow(accounts, record)).toMatchObject({ origin: 'banyan', originUser: 'CORP\\mallory' });
    expect(changeRow(accounts, { ...record, origin: null, origin_user: null }).originUser ?? null).toBeNull();
    expect(() => changeRow(accounts, { ...record, origin_user: 7 })).toThrow(BadRecordError);
    expect(() => changeRow(accounts, { ...record, origin_user: 7 })).toThrow('changelog row 0x00000000000007D1 of [crm].[accounts]: origin_user is not text');
  });

  it('trusts the tag only from the login configured, exactly as the server names it', () => {
    expect(dialect.isTrustedWriter('banyan', 'banyan')).toBe(true);
    expect(dialect.isTrustedWriter('CORP\\svc_banyan', 'CORP\\svc_banyan')).toBe(true);
    expect(dialect.isTrustedWriter('mallory', 'banyan')).toBe(false);
    expect(dialect.isTrustedWriter('CORP\\svc_banyan', 'svc_banyan')).toBe(false);
    expect(dialect.isTrustedWriter('Banyan', 'banyan')).toBe(false);
  });
});
