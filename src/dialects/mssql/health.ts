import type { ChangelogState, TableRef } from '../dialect';
import { triggerName } from './changelog';
import { displayName, quoteIdentifier } from './sql';

/** The statements Banyan's trigger is made for, each of which it must fire first on. */
const EVENTS = ['INSERT', 'UPDATE', 'DELETE'] as const;

/**
 * One row of changelogStateQuery: the changelog's existence and the `nested triggers` option on
 * every row, then one trigger of the table and one statement it fires on (all NULL when the table
 * has no trigger).
 */
export interface TriggerCatalogRow {
  changelog: unknown;
  nested_triggers: unknown;
  trigger: unknown;
  is_disabled: unknown;
  is_instead_of: unknown;
  event: unknown;
  is_first: unknown;
  is_last: unknown;
}

interface Trigger {
  name: string;
  disabled: boolean;
  insteadOf: boolean;
  events: string[];
  first: string[];
  last: string[];
}

/**
 * What doctor reports about the triggers of `table` (docs/dialect-mssql.md, What doctor checks):
 * Banyan's trigger missing, disabled (a fault: it records nothing) or not set to fire first on each
 * of INSERT, UPDATE and DELETE (a fault: a legacy trigger updating the same rows would be recorded
 * in an older state); the table's other triggers and their order (a note); `nested triggers` at 0
 * (a warning: writes made inside triggers are never recorded), or unreadable (a note).
 */
export function changelogStateOf(table: TableRef, rows: TriggerCatalogRow[]): ChangelogState {
  const ours = triggerName(table);
  const triggers = groupTriggers(rows);
  const banyan = triggers.find((t) => t.name === ours.name);
  const others = triggers.filter((t) => t !== banyan);
  const first = rows[0];
  const state: ChangelogState = {
    table: Number(first?.changelog) === 1,
    triggers: [ours.name],
    missingTriggers: banyan ? [] : [ours.name],
    disabledTriggers: banyan?.disabled ? [ours.name] : [],
    faults: banyan ? orderFaults(table, banyan, others) : [],
    warnings: [],
    notes: [],
  };
  if (others.length > 0) state.notes!.push(`other triggers on ${displayName(table)}: ${others.map(describeTrigger).join('; ')}`);
  const nested = first?.nested_triggers;
  if (nested === null || nested === undefined) {
    state.notes!.push(
      "the server option 'nested triggers' could not be read (sys.configurations; SQL Server 2022 documents VIEW SERVER PERFORMANCE STATE for it): check by hand that it is 1",
    );
  } else if (Number(nested) === 0) {
    state.warnings!.push(
      "the server option 'nested triggers' is 0: a write made inside a trigger (another table's trigger writing to this table, or this table's own AFTER trigger updating its rows, such as a modified_at setter) fires no AFTER trigger, so Banyan never records it; set it to 1 (EXEC sp_configure 'nested triggers', 1; RECONFIGURE)",
    );
  }
  return state;
}

function groupTriggers(rows: TriggerCatalogRow[]): Trigger[] {
  const byName = new Map<string, Trigger>();
  for (const row of rows) {
    if (row.trigger === null || row.trigger === undefined) continue;
    const name = String(row.trigger);
    let trigger = byName.get(name);
    if (!trigger) {
      trigger = { name, disabled: truthy(row.is_disabled), insteadOf: truthy(row.is_instead_of), events: [], first: [], last: [] };
      byName.set(name, trigger);
    }
    if (row.event === null || row.event === undefined) continue;
    const event = String(row.event);
    trigger.events.push(event);
    if (truthy(row.is_first)) trigger.first.push(event);
    if (truthy(row.is_last)) trigger.last.push(event);
  }
  return [...byName.values()];
}

/** tedious answers bit columns as booleans; a scripted stand-in may answer 0/1. */
function truthy(value: unknown): boolean {
  return value === true || Number(value) === 1;
}

function orderFaults(table: TableRef, banyan: Trigger, others: Trigger[]): string[] {
  const faults: string[] = [];
  const missing = EVENTS.filter((e) => !banyan.events.includes(e));
  if (missing.length > 0) {
    faults.push(
      `Banyan's trigger ${banyan.name} does not fire on ${missing.join(', ')}: it was altered outside Banyan; delete its rows from banyan_migrations and run \`banyan migrate\` to make it again`,
    );
  }
  const notFirst = EVENTS.filter((e) => banyan.events.includes(e) && !banyan.first.includes(e));
  if (notFirst.length > 0) {
    const holders = notFirst.map((e) => {
      const other = others.find((t) => t.first.includes(e));
      return other ? `${e} (${other.name} is first)` : e;
    });
    const name = displayName(triggerName(table));
    faults.push(
      `Banyan's trigger ${banyan.name} is not set to fire first on ${holders.join(', ')}, so a legacy AFTER trigger that updates the same rows can be recorded in an older state: ` +
        notFirst.map((e) => `EXEC sys.sp_settriggerorder @triggername = N'${name.replace(/'/g, "''")}', @order = N'First', @stmttype = N'${e}'`).join('; ') +
        ' (docs/dialect-mssql.md, Trigger order)',
    );
  }
  return faults;
}

/** `[name] AFTER INSERT, UPDATE (first on INSERT; last on UPDATE; disabled)`. */
function describeTrigger(trigger: Trigger): string {
  const kind = trigger.insteadOf ? 'INSTEAD OF' : 'AFTER';
  const flags = [
    ...(trigger.first.length ? [`first on ${trigger.first.join(', ')}`] : []),
    ...(trigger.last.length ? [`last on ${trigger.last.join(', ')}`] : []),
    ...(trigger.disabled ? ['disabled'] : []),
  ];
  return `${quoteIdentifier(trigger.name)} ${kind} ${trigger.events.join(', ')}${flags.length ? ` (${flags.join('; ')})` : ''}`;
}
