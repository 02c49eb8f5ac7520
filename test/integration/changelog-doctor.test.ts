import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import { PostgresDialect } from '../../src/dialects/postgres.dialect';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { freshName, runBanyan, testConfig, writeConfigFile } from '../helpers';

const POSTGRES = testConfig(`
databases:
  pg:
    dialect: postgres
    database: postgres
    user: postgres
`).databases.pg!;

/** `banyan doctor --json`'s row for the source, and its exit code. */
async function doctor(file: string): Promise<{ code: number | null; source: { name: string; ok: boolean; detail: string } | undefined }> {
  const { code, stdout } = await runBanyan(file, ['doctor', '--json']);
  const checks = (JSON.parse(stdout) as { checks: Array<{ name: string; ok: boolean; detail: string }> }).checks;
  return { code, source: checks.find((c) => c.name === 'source:orders') };
}

describe('banyan doctor and the changelog trigger on PostgreSQL', () => {
  let db: Knex;
  const schema = freshName('banyan_doctor');

  beforeAll(async () => {
    db = createKnex(POSTGRES);
    await db.raw(`CREATE SCHEMA ${schema}`);
  });

  afterAll(async () => {
    await db.raw(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.destroy();
  });

  it('fails while the trigger is disabled or fires for replica sessions only, naming it, and passes once it is enabled again', async () => {
    await db.raw(`CREATE TABLE ${schema}.orders (id int PRIMARY KEY, note text)`);
    await migrateChangelogs(db, new PostgresDialect(), [`${schema}.orders`]);
    const lines = [
      'kafka:',
      '  brokers: ${KAFKA_BROKERS}',
      'schemaRegistry:',
      '  url: ${SCHEMA_REGISTRY_URL}',
      'databases:',
      '  legacy: { dialect: postgres, database: postgres, user: postgres }',
      'sources:',
      '  - name: orders',
      '    type: changelog',
      '    database: legacy',
      `    table: ${schema}.orders`,
    ];
    const file = writeConfigFile(`${lines.join('\n')}\n`);
    const where = `sources[0].table (line ${lines.length})`;
    const trigger = 'banyan_cl_orders_trg';
    const current = `table ${schema}.orders (key id): changelog and triggers installed, current for its 2 columns`;

    expect(await doctor(file)).toEqual({ code: 0, source: { name: 'source:orders', ok: true, detail: current } });

    await db.raw(`ALTER TABLE ${schema}.orders DISABLE TRIGGER ${trigger}`);
    expect(await doctor(file)).toEqual({
      code: 1,
      source: {
        name: 'source:orders',
        ok: false,
        detail:
          `${where}: trigger ${trigger} of table ${schema}.orders is disabled, so nothing written to the table is recorded: ` +
          `ALTER TABLE ${schema}.orders ENABLE TRIGGER ${trigger}; what was written while it was disabled is not in the changelog`,
      },
    });

    await db.raw(`ALTER TABLE ${schema}.orders ENABLE REPLICA TRIGGER ${trigger}`);
    expect(await doctor(file)).toEqual({
      code: 1,
      source: {
        name: 'source:orders',
        ok: false,
        detail:
          `${where}: trigger ${trigger} fires only in sessions with session_replication_role = replica, so ordinary writes are not recorded: ` +
          `ALTER TABLE "${schema}"."orders" ENABLE TRIGGER ${trigger}`,
      },
    });

    await db.raw(`ALTER TABLE ${schema}.orders ENABLE TRIGGER ${trigger}`);
    expect(await doctor(file)).toEqual({ code: 0, source: { name: 'source:orders', ok: true, detail: current } });
  });
});
