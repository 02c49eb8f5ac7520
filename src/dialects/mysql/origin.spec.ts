import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import type { TableInfo } from '../dialect';
import { MysqlDialect } from '../mysql.dialect';
import { addWriterColumnDdl, changelogDdl } from './sql';

/**
 * Who may tag a write (issue 12, item 10): the triggers record USER() with every origin tag, an
 * older changelog table gets the column on the next install (MySQL 8 has no ADD COLUMN IF NOT
 * EXISTS, so it is checked first), the poller reads it, and only Banyan's own user is trusted.
 * The database itself is in test/integration/changelog-forged-tags.test.ts.
 */
const dialect = new MysqlDialect();

const accounts: TableInfo = {
  name: 'accounts',
  primaryKey: ['id'],
  columns: [
    { name: 'id', sqlType: 'int', type: { kind: 'int' }, nullable: false },
    { name: 'name', sqlType: 'varchar(100)', type: { kind: 'string', maxLength: 100, unicode: true }, nullable: true },
  ],
};

const WRITER = 'IF(@banyan_origin IS NULL, NULL, LEFT(USER(), 512))';

/** A knex whose raw() answers from `answer` and remembers what it was sent, in a transaction or not. */
function scripted(answer: (sql: string) => unknown) {
  const sent: string[] = [];
  const raw = async (sql: string) => (sent.push(sql), answer(sql));
  const db = { raw, transaction: async (work: (trx: unknown) => Promise<unknown>) => work({ raw }) } as unknown as Knex;
  return { db, sent };
}

describe('MySQL/MariaDB: the changelog records who wrote a tagged change', () => {
  const ddl = changelogDdl(accounts);

  it('creates the changelog with an origin_user column long enough for user@host', () => {
    expect(ddl[0]).toContain('  origin VARCHAR(128) NULL,\n  origin_user VARCHAR(512) NULL,\n');
  });

  it('records USER() with a tag, NULL without one, in all three triggers (bridges included)', () => {
    const creates = ddl.filter((s) => s.startsWith('CREATE TRIGGER'));
    expect(creates).toHaveLength(6);
    for (const create of creates) {
      expect(create).toContain('INSERT INTO `banyan_cl_accounts` (op, changed_at, origin, origin_user, before_image, after_image)');
      expect(create).toMatch(new RegExp(`VALUES \\('[IUD]', UTC_TIMESTAMP\\(6\\), LEFT\\(@banyan_origin, 128\\), ${WRITER.replace(/[()@]/g, '\\$&')}, `));
      // CURRENT_USER() inside a trigger is the trigger's definer, never the writer.
      expect(create).not.toContain('CURRENT_USER');
    }
  });

  it('adds the column at the end of an older changelog (in place, no table copy)', () => {
    expect(addWriterColumnDdl({ schema: 'le`gacy', name: 'accounts' })).toBe('ALTER TABLE `le``gacy`.`banyan_cl_accounts` ADD COLUMN origin_user VARCHAR(512) NULL');
  });

  it('upgrades a changelog that lacks origin_user, once: nothing for a current or a missing one', async () => {
    const answer = (t: number, c: number) => (sql: string) => (sql.startsWith('SELECT') ? [[{ t, c }]] : [{ affectedRows: 0 }]);
    const old = scripted(answer(1, 0));
    await dialect.upgradeChangelog(old.db, { name: 'accounts' }, 2500);
    expect(old.sent[0]).toContain("COLUMN_NAME = 'origin_user'");
    // Its metadata-lock wait bounded as the install's (migrationGuard), then set back.
    expect(old.sent.slice(1)).toEqual([
      'SET SESSION lock_wait_timeout = 3',
      'ALTER TABLE `banyan_cl_accounts` ADD COLUMN origin_user VARCHAR(512) NULL',
      'SET SESSION lock_wait_timeout = DEFAULT',
    ]);

    for (const [t, c] of [
      [1, 1],
      [0, 0],
    ] as const) {
      const other = scripted(answer(t, c));
      await dialect.upgradeChangelog(other.db, { name: 'accounts' }, 2500);
      expect(other.sent).toHaveLength(1);
    }
  });

  it('takes a column another process added meanwhile (ER_DUP_FIELDNAME) as done, a lock wait passed as a clear failure, any other failure as it is', async () => {
    const failing = (errno: number) =>
      scripted((sql) => {
        if (sql.startsWith('SELECT')) return [[{ t: 1, c: 0 }]];
        if (sql.startsWith('ALTER')) throw Object.assign(new Error('refused'), { errno });
        return [];
      });
    await expect(dialect.upgradeChangelog(failing(1060).db, { name: 'accounts' }, 2500)).resolves.toBeUndefined();
    await expect(dialect.upgradeChangelog(failing(1205).db, { schema: 'shop', name: 'accounts' }, 2500)).rejects.toThrow(
      "table shop.accounts: adding origin_user to its changelog waited more than 2500 ms for a lock (a session of the application holds one); nothing was changed. Run banyan migrate again when the table is quiet, or raise the database's timeouts.lockMs. (refused)",
    );
    const other = failing(1142);
    await expect(dialect.upgradeChangelog(other.db, { name: 'accounts' }, 2500)).rejects.toThrow('refused');
    expect(other.sent.at(-1)).toBe('SET SESSION lock_wait_timeout = DEFAULT');
  });

  it('reads origin_user with each change and hands it on as the row’s originUser', async () => {
    const { db, sent } = scripted(() => [
      [{ change_id: '1', op: 'U', changed_at: '2024-01-02 03:04:05.678000', origin: 'banyan', origin_user: 'mallory@10.0.0.7', before_image: '{"id":"1"}', after_image: '{"id":"1"}' }],
    ]);
    const batch = await dialect.readChanges(db, accounts, undefined, 10, 0);
    expect(sent[0]).toContain('SELECT change_id, op, CAST(changed_at AS CHAR) AS changed_at, origin, origin_user, before_image, after_image');
    expect(batch.rows[0]).toMatchObject({ origin: 'banyan', originUser: 'mallory@10.0.0.7' });
  });
});

describe('MySQL/MariaDB: whose tag is trusted', () => {
  it.each([
    // [USER() as recorded, originUser (or the database's user), trusted?]
    ['banyan@localhost', 'banyan', true],
    ['banyan@10.0.0.7', 'banyan', true],
    ['mallory@localhost', 'banyan', false],
    ['Banyan@localhost', 'banyan', false], // user names are case-sensitive
    ['banyanx@localhost', 'banyan', false],
    ['banyan@localhost', 'banyan@localhost', true],
    ['banyan@LocalHost', 'banyan@localhost', true], // host names are not
    ['banyan@10.0.0.7', 'banyan@localhost', false],
    ['banyan@10.0.0.7', "'banyan'@'10.0.%'", true],
    ['banyan@10.1.0.7', "'banyan'@'10.0.%'", false],
    ['banyan@10.0.0.7', "'banyan'@'%'", true],
    ['banyan@10.0.0.7', '`banyan`@`10.0.0._`', true],
    ['banyan@10.0.0.17', '"banyan"@"10.0.0._"', false],
    ['banyan@10x0x0x7', "'banyan'@'10.0.0.7'", false], // a dot is a dot, not any character
    ['banyan@localhost', "'banyan'@localhost", true],
    ['banyan@localhost', "'banyan'", true],
    // A name may hold '@' (quoted, as MySQL writes it); the host never does.
    ['svc@corp@localhost', "'svc@corp'", true],
    ['svc@corp@localhost', "'svc@corp'@'localhost'", true],
    ['svc@corp@localhost', 'svc', false],
    ["o'neil@localhost", "'o''neil'@'%'", true],
  ])('USER() %s, trusted %s: %s', (writer, trusted, expected) => {
    expect(dialect.isTrustedWriter(writer, trusted)).toBe(expected);
  });
});
