import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import type { Dialect, TableInfo } from '../dialect';
import { PostgresDialect } from '../postgres.dialect';

/**
 * Who may tag a write (issue 12, item 10): the trigger records session_user with every origin tag,
 * an older changelog table gets the column on the next install, the poller reads it, and only
 * Banyan's own role is trusted. The database itself is in test/integration/changelog-forged-tags.test.ts.
 */
const dialect: Dialect = new PostgresDialect();

const accounts: TableInfo = {
  schema: 'crm',
  name: 'accounts',
  primaryKey: ['id'],
  columns: [
    { name: 'id', sqlType: 'integer', type: { kind: 'int' }, nullable: false },
    { name: 'name', sqlType: 'text', type: { kind: 'string', unicode: true }, nullable: true },
  ],
};

const statements = dialect.installChangelog(accounts);
const create = statements.find((s) => s.startsWith('CREATE TABLE IF NOT EXISTS'))!;
const fn = statements.find((s) => s.startsWith('CREATE OR REPLACE FUNCTION'))!;

describe('PostgreSQL: the changelog records who wrote a tagged change', () => {
  it('creates the changelog with an origin_user column', () => {
    expect(create).toMatch(/\n\s+origin text NULL,\n\s+origin_user text NULL,\n/);
  });

  it('adds origin_user to a changelog an older Banyan made, if missing, before the function that writes it', () => {
    const add = statements.indexOf('ALTER TABLE "crm"."banyan_cl_accounts" ADD COLUMN IF NOT EXISTS origin_user text NULL');
    expect(add).toBeGreaterThan(statements.indexOf(create));
    expect(add).toBeLessThan(statements.indexOf(fn));
  });

  it('records session_user with a tag, and NULL without one, in every operation', () => {
    expect(fn).toContain("banyan_origin text := NULLIF(current_setting('banyan.origin', true), '');");
    expect(fn).toContain('banyan_writer text := CASE WHEN banyan_origin IS NOT NULL THEN session_user END;');
    // Not current_user: SET ROLE (to a role the writer is a member of) changes it.
    expect(fn).not.toMatch(/current_user/i);
    expect(fn).toContain(`INSERT INTO "crm"."banyan_cl_accounts" (op, origin, origin_user, after_image) VALUES ('I', banyan_origin, banyan_writer, json_object(`);
    expect(fn).toContain(`INSERT INTO "crm"."banyan_cl_accounts" (op, origin, origin_user, before_image, after_image) VALUES ('U', banyan_origin, banyan_writer, json_object(`);
    expect(fn).toContain(`INSERT INTO "crm"."banyan_cl_accounts" (op, origin, origin_user, before_image) VALUES ('D', banyan_origin, banyan_writer, json_object(`);
  });

  it('reads origin_user with each change and hands it on as the row’s originUser', async () => {
    const sent: string[] = [];
    // Answers in the order readChanges asks: the last drawn id, a fresh xid, the xmin, the rows.
    const answers = [{ rows: [{ v: '1' }] }, { rows: [{ v: '100' }] }, { rows: [{ v: '101' }] }];
    const db = {
      raw: async (sql: string) => {
        sent.push(sql);
        return (
          answers.shift() ?? {
            rows: [{ id: '1', op: 'I', at: 5, origin: 'banyan', origin_user: 'mallory', before: null, after: '{"id":"1","name":"x"}' }],
          }
        );
      },
    } as unknown as Knex;
    const batch = await dialect.readChanges(db, accounts, undefined, 10, 0);
    expect(sent.at(-1)).toMatch(/SELECT change_id::text AS id, op, .* origin, origin_user,/s);
    expect(batch.rows).toEqual([
      { op: 'I', changedAt: 5, origin: 'banyan', originUser: 'mallory', before: null, after: { id: '1', name: 'x' }, position: '00000000000000000001' },
    ]);
  });

  it('trusts the tag only from the role configured, compared exactly (role names are case-sensitive)', () => {
    expect(dialect.isTrustedWriter('banyan', 'banyan')).toBe(true);
    expect(dialect.isTrustedWriter('mallory', 'banyan')).toBe(false);
    expect(dialect.isTrustedWriter('Banyan', 'banyan')).toBe(false);
    expect(dialect.isTrustedWriter('banyan ', 'banyan')).toBe(false);
  });
});
