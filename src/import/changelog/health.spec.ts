import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { migrationName } from '../../../migrations/changelog';
import { parseConfig } from '../../config';
import type { ChangelogState, Dialect, TableInfo } from '../../dialects/dialect';
import type { ChangelogSourceConfig } from './config';
import { ChangelogSourceHealthCheck } from './health';

const config = parseConfig(
  `kafka:
  brokers: 127.0.0.1:19092
schemaRegistry:
  url: http://127.0.0.1:18081/apis/ccompat/v7
databases:
  legacy:
    dialect: mssql
    host: db.example
    database: app
    user: banyan
sources:
  - name: orders
    type: changelog
    database: legacy
    table: sales.orders
`,
  'banyan.yaml',
  {},
);
const source = config.sources[0] as ChangelogSourceConfig;

const orders: TableInfo = {
  schema: 'sales',
  name: 'orders',
  primaryKey: ['id'],
  columns: [
    { name: 'id', sqlType: 'int', type: { kind: 'int' }, nullable: false },
    { name: 'note', sqlType: 'nvarchar(20)', type: { kind: 'string', maxLength: 20, unicode: true }, nullable: true },
  ],
};

/** A dialect whose table is installed and current, and whose changelogState answers `state`. */
function dialectAnswering(state: Partial<ChangelogState>): Dialect {
  return {
    name: 'mssql',
    describeTable: async () => orders,
    changelogTable: (t: { name: string }) => ({ schema: 'sales', name: `banyan_cl_${t.name}` }),
    installChangelog: () => ['CREATE TRIGGER …'],
    changelogState: async () => ({ table: true, triggers: ['banyan_cl_orders_trg'], missingTriggers: [], ...state }),
  } as unknown as Dialect;
}

/** A knex whose banyan_migrations holds the current migration of `orders`. */
function migrated(dialect: Dialect): Knex {
  const table = () => ({ select: async () => [{ name: migrationName(dialect, orders) }] });
  return Object.assign(table, { schema: { hasTable: async () => true } }) as unknown as Knex;
}

async function check(state: Partial<ChangelogState>) {
  const dialect = dialectAnswering(state);
  return new ChangelogSourceHealthCheck(source, 'sources[0].table (line 11)', migrated(dialect), dialect).check();
}

const CURRENT = 'table sales.orders (key id): changelog and triggers installed, current for its 2 columns';

describe('ChangelogSourceHealthCheck', () => {
  it('passes an installed, current, enabled changelog with the same detail as before, when the dialect says nothing more', async () => {
    expect(await check({})).toEqual({ name: 'source:orders', ok: true, detail: CURRENT });
    expect(await check({ disabledTriggers: [], faults: [], warnings: [], notes: [] })).toEqual({ name: 'source:orders', ok: true, detail: CURRENT });
  });

  it('fails a disabled trigger, naming it and how to enable it', async () => {
    expect(await check({ disabledTriggers: ['banyan_cl_orders_trg'] })).toEqual({
      name: 'source:orders',
      ok: false,
      detail:
        'sources[0].table (line 11): trigger banyan_cl_orders_trg of table sales.orders is disabled, so nothing written to the table is recorded: ' +
        'ALTER TABLE sales.orders ENABLE TRIGGER banyan_cl_orders_trg; what was written while it was disabled is not in the changelog',
    });
  });

  it("fails on the dialect's faults, and still shows its warnings and notes", async () => {
    expect(await check({ faults: ['not first on UPDATE'], warnings: ['nested triggers is 0'], notes: ['other triggers: [x]'] })).toEqual({
      name: 'source:orders',
      ok: false,
      detail: 'sources[0].table (line 11): not first on UPDATE; warning: nested triggers is 0; other triggers: [x]',
    });
  });

  it('passes with warnings and notes after the detail', async () => {
    expect(await check({ warnings: ['nested triggers is 0'], notes: ['other triggers: [x]'] })).toEqual({
      name: 'source:orders',
      ok: true,
      detail: `${CURRENT}; warning: nested triggers is 0; other triggers: [x]`,
    });
  });
});
