import knex, { type Knex } from 'knex';
import { describe, expect, it, vi } from 'vitest';
import type { Dialect, TableRef } from '../dialect';
import { MssqlDialect } from '../mssql.dialect';
import { driftQuery, watchStateQuery, withDrift } from './drift';
import { changelogTable } from './changelog';
import { changelogStateOf, type TriggerCatalogRow } from './health';
import { changelogStateQuery } from './queries';
import { displayName } from './sql';

const orders: TableRef = { schema: 'sales', name: 'orders' };
const BANYAN = 'banyan_cl_orders_trg';
// knex compiles SQL Server SQL without a connection: what tedious would be sent.
const compiler = knex({ client: 'mssql' });

/** Rows as SQL Server answers changelogStateQuery: one per trigger and statement, the first two columns on every row. */
function rows(nested: number | null, triggers: Array<[name: string, event: string, flags?: { first?: boolean; last?: boolean; disabled?: boolean; insteadOf?: boolean }]>): TriggerCatalogRow[] {
  const common = { changelog: 1, nested_triggers: nested };
  if (triggers.length === 0) return [{ ...common, trigger: null, is_disabled: null, is_instead_of: null, event: null, is_first: null, is_last: null }];
  return triggers.map(([name, event, f = {}]) => ({
    ...common,
    trigger: name,
    is_disabled: f.disabled ?? false,
    is_instead_of: f.insteadOf ?? false,
    event,
    is_first: f.first ?? false,
    is_last: f.last ?? false,
  }));
}

/** Banyan's trigger as install leaves it: on all three statements, first on each. */
const banyanFirst = (flags: { disabled?: boolean } = {}): Array<[string, string, { first: boolean; disabled?: boolean }]> =>
  (['DELETE', 'INSERT', 'UPDATE'] as const).map((e) => [BANYAN, e, { first: true, ...flags }]);

describe('changelogStateQuery', () => {
  it('reads the changelog, nested triggers, and every trigger of the table with its events, order and state, in one result set', () => {
    const q = changelogStateQuery(orders);
    expect(q.sql).toBe(`SELECT CASE WHEN OBJECT_ID(?, N'U') IS NULL THEN 0 ELSE 1 END AS [changelog],
  (SELECT CONVERT(INT, [c].[value_in_use]) FROM [sys].[configurations] AS [c] WHERE [c].[name] = N'nested triggers') AS [nested_triggers],
  [tr].[name] AS [trigger], [tr].[is_disabled] AS [is_disabled], [tr].[is_instead_of_trigger] AS [is_instead_of],
  [ev].[type_desc] AS [event], [ev].[is_first] AS [is_first], [ev].[is_last] AS [is_last]
FROM (VALUES (1)) AS [one] ([x])
LEFT JOIN [sys].[triggers] AS [tr] ON [tr].[parent_id] = OBJECT_ID(?, N'U')
LEFT JOIN [sys].[trigger_events] AS [ev] ON [ev].[object_id] = [tr].[object_id]
ORDER BY [tr].[name], [ev].[type_desc];`);
    // The changelog's name is changelog.ts's business; the table is bound as written.
    expect(q.bindings).toEqual([displayName(changelogTable(orders)), '[sales].[orders]']);
  });

  it('binds the names, quoted, and inlines nothing a table name holds', () => {
    const hostile = { schema: 'sales', name: "order]lines';--" };
    const q = changelogStateQuery(hostile);
    expect(q.bindings).toEqual([displayName(changelogTable(hostile)), "[sales].[order]]lines';--]"]);
    expect(q.bindings[0]).toContain("order]]lines';--");
    expect(q.sql).not.toContain('lines');
    const native = compiler.raw(q.sql, q.bindings).toSQL().toNative();
    expect(native.sql).toContain("OBJECT_ID(@p0, N'U') IS NULL");
    expect(native.sql).toContain("[tr].[parent_id] = OBJECT_ID(@p1, N'U')");
    expect(native.bindings).toEqual(q.bindings);
  });
});

describe('changelogStateOf', () => {
  it('passes a trigger that is enabled and first on INSERT, UPDATE and DELETE, and names the other triggers and their order', () => {
    const state = changelogStateOf(orders, rows(1, [...banyanFirst(), ['orders_modified', 'INSERT'], ['orders_modified', 'UPDATE', { last: true }], ['orders_audit', 'DELETE', { disabled: true }]]));
    expect(state).toEqual({
      table: true,
      triggers: [BANYAN],
      missingTriggers: [],
      disabledTriggers: [],
      faults: [],
      warnings: [],
      notes: ['other triggers on [sales].[orders]: [orders_modified] AFTER INSERT, UPDATE (last on UPDATE); [orders_audit] AFTER DELETE (disabled)'],
    });
  });

  it('says nothing about other triggers when there are none', () => {
    expect(changelogStateOf(orders, rows(1, banyanFirst())).notes).toEqual([]);
  });

  it('reports a disabled trigger', () => {
    const state = changelogStateOf(orders, rows(1, banyanFirst({ disabled: true })));
    expect(state.disabledTriggers).toEqual([BANYAN]);
    expect(state.missingTriggers).toEqual([]);
  });

  it('fails a trigger not first on a statement, naming the trigger that is, and says how to set the order', () => {
    const state = changelogStateOf(
      orders,
      rows(1, [
        [BANYAN, 'DELETE', { first: true }],
        [BANYAN, 'INSERT', { first: true }],
        [BANYAN, 'UPDATE'],
        ['orders_modified', 'UPDATE', { first: true }],
      ]),
    );
    expect(state.faults).toEqual([
      "Banyan's trigger banyan_cl_orders_trg is not set to fire first on UPDATE (orders_modified is first), so a legacy AFTER trigger that updates the same rows can be recorded in an older state: " +
        "EXEC sys.sp_settriggerorder @triggername = N'[sales].[banyan_cl_orders_trg]', @order = N'First', @stmttype = N'UPDATE' (docs/dialect-mssql.md, Trigger order)",
    ]);
    expect(state.notes).toEqual(['other triggers on [sales].[orders]: [orders_modified] AFTER UPDATE (first on UPDATE)']);
  });

  it('fails a trigger that no longer fires on every statement (altered outside Banyan)', () => {
    const state = changelogStateOf(orders, rows(1, [[BANYAN, 'INSERT', { first: true }], [BANYAN, 'UPDATE', { first: true }]]));
    expect(state.faults).toEqual([
      "Banyan's trigger banyan_cl_orders_trg does not fire on DELETE: it was altered outside Banyan; delete its rows from banyan_migrations and run `banyan migrate` to make it again",
    ]);
  });

  it('reports a missing trigger, and no order fault for it', () => {
    const state = changelogStateOf(orders, [{ ...rows(1, [])[0]!, changelog: 0 }]);
    expect(state).toMatchObject({ table: false, missingTriggers: [BANYAN], disabledTriggers: [], faults: [] });
  });

  it('warns when nested triggers is 0, and notes when it cannot be read', () => {
    expect(changelogStateOf(orders, rows(0, banyanFirst())).warnings).toEqual([
      "the server option 'nested triggers' is 0: a write made inside a trigger (another table's trigger writing to this table, or this table's own AFTER trigger updating its rows, such as a modified_at setter) fires no AFTER trigger, so Banyan never records it; set it to 1 (EXEC sp_configure 'nested triggers', 1; RECONFIGURE)",
    ]);
    const unread = changelogStateOf(orders, rows(null, banyanFirst()));
    expect(unread.warnings).toEqual([]);
    expect(unread.notes).toEqual([
      "the server option 'nested triggers' could not be read (sys.configurations; SQL Server 2022 documents VIEW SERVER PERFORMANCE STATE for it): check by hand that it is 1",
    ]);
  });

  it('reads tedious booleans and 0/1 alike', () => {
    const numeric = rows(1, [...banyanFirst()]).map((r) => ({ ...r, is_first: 1, is_disabled: 0, is_instead_of: 0, is_last: 0 }));
    expect(changelogStateOf(orders, numeric)).toMatchObject({ disabledTriggers: [], faults: [] });
  });
});

describe('MssqlDialect.changelogState', () => {
  it('runs the catalog query, then the schema watch’s state and its log, and reads their rows', async () => {
    const raw = vi.fn(async (sql: string) => {
      if (sql === watchStateQuery().sql) return [{ present: 1, disabled: 0, visible: 1 }];
      if (sql === driftQuery(orders).sql) return [{ at: '2026-12-05T10:00:00.000', login: 'app', event: 'ALTER_TABLE', dropped: '[gone]', renamed: null, retyped: null, added: null, error: null }];
      return rows(1, banyanFirst({ disabled: true }));
    });
    const dialect: Dialect = new MssqlDialect();
    const state = await dialect.changelogState({ raw } as unknown as Knex, orders);
    expect(raw).toHaveBeenCalledTimes(3);
    expect(raw).toHaveBeenNthCalledWith(1, changelogStateQuery(orders).sql, changelogStateQuery(orders).bindings);
    expect(state).toMatchObject({ table: true, missingTriggers: [], disabledTriggers: [BANYAN] });
    expect(state.warnings).toContain(
      'the application changed the table at 2026-12-05T10:00:00.000Z by app (ALTER_TABLE): dropped [gone]; the trigger was rebuilt, run banyan migrate to image the table as it is now',
    );
  });

  it('says when the schema watch is missing, disabled or unseen, and when a rebuild failed', () => {
    const base = { table: true, triggers: [BANYAN], missingTriggers: [] };
    expect(withDrift(base, { present: 0, disabled: 0, visible: 1 }, []).faults).toEqual([
      'the schema watch [banyan_schema_watch] is missing: a column the application drops or renames will make every write to the table fail until banyan migrate; run banyan migrate',
    ]);
    expect(withDrift(base, { present: 1, disabled: 1, visible: 1 }, []).faults![0]).toMatch(/^the schema watch \[banyan_schema_watch\] is disabled/);
    const unseen = withDrift(base, { present: 0, disabled: 0, visible: 0 }, []);
    expect(unseen.faults).toEqual([]);
    expect(unseen.notes![0]).toMatch(/cannot be seen by this login/);
    const failed = withDrift(base, { present: 1, disabled: 0, visible: 1 }, [{ at: '2026-12-05T10:00:00.000', login: 'app', event: 'RENAME', error: 'Invalid column name' }]);
    expect(failed.faults).toEqual(['the schema watch could not rebuild the trigger after the change at 2026-12-05T10:00:00.000Z by app (RENAME): Invalid column name; run banyan migrate']);
  });
});
