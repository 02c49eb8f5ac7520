import type { RowMapping, RowMappingBlock } from '../core';
import type { Column, GuardRow, TableInfo } from '../dialects/dialect';
import type { DomainEvent } from '../domain/event';
import type { ChangeTypeState } from '../runtime/change-types';

/**
 * The sinks' decisions, pure and shared by the legacy and the Salesforce sink: which fields of which
 * target rows (legacy rows, Salesforce records) a batch of domain events writes, and what the
 * version guard holds afterwards. docs/conflicts.md explains the rule; in short:
 *
 * - the guard holds, per entity and field, the version (source commit time, origin, event id) of
 *   the value the target holds: one Banyan wrote, or one the target's own system wrote and Banyan
 *   saw come back as an event of that origin;
 * - a value is written only when its version is newer than the guard's (last writer wins, per
 *   field); at the same time, the legacy database wins over Salesforce, Salesforce over the domain,
 *   and between the same origins the greater event id: the result does not depend on arrival order;
 * - an event from the target's own system is already there: it is observed (guard only), unless the
 *   field's value in the guard was written by Banyan, in which case the newer value may have been
 *   overwritten by that write and is written back (a no-op when the target still holds it);
 * - the change type's lifecycle decides what is written at all (see `decide`).
 */

export interface Version {
  versionMs: number;
  origin: string;
  eventId: string;
}

const ORIGIN_RANK: Record<string, number> = { domain: 0, salesforce: 1, legacy: 2 };

/** Whether `a` is newer than `b` (no `b`: nothing known, so yes). */
export function newer(a: Version, b: Version | undefined): boolean {
  if (!b) return true;
  if (a.versionMs !== b.versionMs) return a.versionMs > b.versionMs;
  const ra = ORIGIN_RANK[a.origin] ?? -1;
  const rb = ORIGIN_RANK[b.origin] ?? -1;
  if (ra !== rb) return ra > rb;
  return a.eventId > b.eventId;
}

export function guardKey(entity: string, entityId: string, field: string): string {
  return `${entity}\u0000${entityId}\u0000${field}`;
}

/** One input event of the batch, where it was. */
export interface PlannedInput {
  /** The input's index in the batch (its dead letter names the message). */
  index: number;
  event: DomainEvent;
}

/** What the batch does to one legacy row. */
export interface RowPlan {
  /** Key column values in primary-key order. */
  key: unknown[];
  /** JSON of the key's text, to match the rows the database locks. */
  id: string;
  /** Delete the row (before `set`, if anything is set after the delete in the same batch). */
  delete: boolean;
  /** Column → value to write. */
  set: Map<string, unknown>;
  /** Column → value known from the events, to fill a row that has to be inserted. */
  known: Map<string, unknown>;
  /** The inputs that contributed (for their dead letters if the database refuses the row). */
  inputs: Set<number>;
  /** The guard rows that hold once this row is written. */
  guard: Map<string, GuardRow>;
  /** Whether a missing row may be inserted: not when only legacy values are written back (the legacy side may have deleted it). */
  insertable: boolean;
}

export interface Plan {
  rows: Map<string, RowPlan>;
  /** Guard rows that change with no write (observed legacy values). */
  observed: Map<string, GuardRow>;
  /** Inputs that cannot be written, with why. */
  refused: Array<{ index: number; code: string; reason: string }>;
  /** Inputs that make nothing on purpose, by reason. */
  dropped: Record<string, number>;
  /** Events reported instead of written (lifecycle), with the reason. */
  reports: Array<{ event: DomainEvent; reason: string; fields: string[] }>;
  /** Fields an event carried that the guard already holds a newer (or the same) version of. */
  stale: number;
  /** Legacy-origin fields recorded in the guard without a write. */
  observedFields: number;
  /** The row each guard row of `rows` belongs to. */
  owners: Map<string, RowPlan>;
}

export interface PlanContext {
  mapping: RowMapping;
  /** The table's primary key columns, in order. */
  primaryKey: string[];
  stateOf(entity: string): ChangeTypeState;
  /** The guard as read for this batch's entities, updated by the plan as it decides. */
  guard: Map<string, GuardRow>;
  /** Soft delete instead of a row delete. */
  softDelete?: { column: string; value: unknown };
  /** A column value as the database takes it (dialect parameter). */
  parameter(column: string, value: unknown): unknown;
  /** The system written (default legacy): its own events are observed, not written. */
  target?: SinkTarget;
}

/** The system a sink writes: events from it are already there (observed, not written). */
export type SinkTarget = 'legacy' | 'salesforce';

/**
 * What the lifecycle lets an event of `origin` do to `target` in `state`: write, observe, report,
 * or nothing. The legacy database and the domain are the two owners the lifecycle moves between;
 * Salesforce follows whichever owns the change type:
 *
 * - `legacy-owned`: legacy changes are written to Salesforce; the new system's (domain or
 *   Salesforce) changes are reported, not written to the legacy database or to Salesforce;
 * - `dual`: every origin's changes are written everywhere else, last writer wins per field;
 * - `new-owned`: the new system's changes are written; legacy-side changes are reported;
 * - `decommissioned`: nothing.
 */
export function decide(state: ChangeTypeState, origin: string, target: SinkTarget = 'legacy'): 'write' | 'observe' | 'report' | 'drop' {
  if (state === 'decommissioned') return 'drop';
  if (origin === target) {
    // Already in the target. A legacy write under new-owned is a write the lifecycle forbids: reported.
    return target === 'legacy' && state === 'new-owned' ? 'report' : 'observe';
  }
  if (origin === 'legacy') return state === 'new-owned' ? 'report' : 'write';
  // The new system's changes (a domain service's, or Salesforce's on its way to the legacy database).
  return state === 'legacy-owned' ? 'report' : 'write';
}

/** Plans a batch of events (in offset order) against the guard. */
export function planBatch(inputs: PlannedInput[], ctx: PlanContext): Plan {
  const plan: Plan = { rows: new Map(), observed: new Map(), refused: [], dropped: {}, reports: [], stale: 0, observedFields: 0, owners: new Map() };
  const changed = new Map<string, RowMappingBlock>();
  const deleted = new Map<string, RowMappingBlock>();
  for (const block of ctx.mapping.blocks) {
    changed.set(block.event, block);
    if (block.deletedEvent) deleted.set(block.deletedEvent, block);
  }
  const drop = (reason: string) => (plan.dropped[reason] = (plan.dropped[reason] ?? 0) + 1);
  for (const { index, event } of inputs) {
    const block = changed.get(event.type) ?? deleted.get(event.type);
    if (!block) {
      drop('unmapped');
      continue;
    }
    const action = decide(ctx.stateOf(event.entity), event.origin, ctx.target);
    if (action === 'drop') {
      drop(`lifecycle:${ctx.stateOf(event.entity)}`);
      continue;
    }
    const isDelete = !changed.has(event.type);
    const fields = isDelete ? block.fields : block.fields.filter((f) => event.changedFields.includes(f.field));
    if (action === 'report') {
      drop(`reported:${ctx.stateOf(event.entity)}`);
      plan.reports.push({ event, reason: `lifecycle:${ctx.stateOf(event.entity)}`, fields: fields.map((f) => f.field) });
      continue;
    }
    const key = rowKey(block, event, ctx.primaryKey);
    if (typeof key === 'string') {
      plan.refused.push({ index, code: 'NO_KEY', reason: key });
      continue;
    }
    const version: Version = { versionMs: event.sourceCommitTime, origin: event.origin, eventId: event.eventId };
    const guardRow = (field: string, written: boolean): GuardRow => ({ entity: event.entity, entityId: event.entityId, field, ...version, written });
    const current = (field: string) => ctx.guard.get(guardKey(event.entity, event.entityId, field));

    if (isDelete && block.entity === ctx.mapping.rowEntity && !ctx.softDelete) {
      // A row delete is newer than the row only when it is newer than every field the guard knows of it.
      if (!fields.every((f) => newer(version, current(f.field)))) {
        plan.stale += fields.length;
        drop('stale');
        continue;
      }
      // A legacy delete is observed, never written back, even newer than a value Banyan wrote: the
      // legacy application may have inserted the row again since (delete + insert, REPLACE INTO),
      // and deleting a live row would be far worse than keeping one Banyan brought back.
      const observe = action === 'observe';
      if (observe) {
        // Older writes of this entity planned earlier in the batch are taken back: the row is gone.
        const planned = plan.rows.get(rowId(key));
        if (planned) {
          for (const f of fields) {
            planned.set.delete(f.column);
            planned.known.delete(f.column);
          }
          if (planned.set.size === 0) planned.insertable = false;
        }
      }
      const row = observe ? undefined : rowOf(plan, key);
      if (row) {
        row.delete = true;
        row.insertable = false;
        row.set.clear();
        row.known.clear();
        row.inputs.add(index);
      }
      for (const f of fields) record(plan, ctx, guardKey(event.entity, event.entityId, f.field), guardRow(f.field, !observe), row);
      if (observe) plan.observedFields += fields.length;
      continue;
    }

    // Values first: an event whose values cannot all be written back is refused whole.
    const values = new Map<string, unknown>();
    let refusal: { code: string; reason: string } | undefined;
    const softDelete = isDelete && block.entity === ctx.mapping.rowEntity ? ctx.softDelete : undefined;
    if (!isDelete) {
      const wanted = action === 'write' ? fields : fields.filter((f) => current(f.field)?.written);
      for (const f of [...wanted, ...block.fields.filter((f) => event.knownFields.includes(f.field) && !wanted.includes(f))]) {
        if (f.notWritable) {
          if (wanted.includes(f)) refusal = { code: 'NOT_WRITABLE', reason: `${event.type}.${f.field} cannot be written to ${f.column}: ${f.notWritable}` };
          continue;
        }
        try {
          values.set(f.field, ctx.parameter(f.column, f.toColumn(event.data[f.field] ?? null)));
        } catch (error) {
          if (wanted.includes(f)) {
            refusal = {
              code: (error as { code?: string }).code ?? 'UNWRITABLE_VALUE',
              reason: `${event.type}.${f.field} → ${f.column}: ${(error as Error).message}`,
            };
          }
        }
        if (refusal) break;
      }
    }
    if (refusal) {
      plan.refused.push({ index, ...refusal });
      continue;
    }
    // A soft delete, like a row delete, is newer than the row only when newer than every field the guard knows of it.
    if (softDelete && !fields.every((f) => newer(version, current(f.field)))) {
      plan.stale += fields.length;
      drop('stale');
      continue;
    }
    let row: RowPlan | undefined;
    let observedAny = false;
    for (const f of fields) {
      const guarded = current(f.field);
      if (!newer(version, guarded)) {
        plan.stale++;
        continue;
      }
      // The target's own value is already there, unless a write of Banyan's (older by commit time) may have hidden it.
      const write = action === 'write' || (!isDelete && (guarded?.written ?? false));
      if (!write) {
        record(plan, ctx, guardKey(event.entity, event.entityId, f.field), guardRow(f.field, false), undefined);
        plan.observedFields++;
        observedAny = true;
        continue;
      }
      row ??= rowOf(plan, key);
      if (!softDelete) row.set.set(f.column, isDelete ? null : values.get(f.field));
      if (action === 'write' && !isDelete) row.insertable = true;
      row.inputs.add(index);
      record(plan, ctx, guardKey(event.entity, event.entityId, f.field), guardRow(f.field, true), row);
    }
    if (softDelete && row) row.set.set(softDelete.column, ctx.parameter(softDelete.column, softDelete.value));
    if (row && !isDelete) {
      for (const f of block.fields) if (event.knownFields.includes(f.field) && values.has(f.field)) row.known.set(f.column, values.get(f.field));
    }
    // Observed fields are accounted in observedFields; an event that neither wrote nor observed anything is dropped.
    if (!row && !observedAny) drop(fields.length === 0 ? 'no-mapped-field' : 'stale');
  }
  return plan;
}

/** Every row the inputs' events name (whatever they will decide), each once: what a batch locks before it plans. */
export function rowsTouched(inputs: PlannedInput[], mapping: RowMapping, primaryKey: string[]): Array<{ key: unknown[]; id: string }> {
  const blocks = new Map<string, RowMappingBlock>();
  for (const block of mapping.blocks) {
    blocks.set(block.event, block);
    if (block.deletedEvent) blocks.set(block.deletedEvent, block);
  }
  const rows = new Map<string, { key: unknown[]; id: string }>();
  for (const { event } of inputs) {
    const block = blocks.get(event.type);
    const key = block && rowKey(block, event, primaryKey);
    if (!key || typeof key === 'string') continue;
    const id = rowId(key);
    if (!rows.has(id)) rows.set(id, { key, id });
  }
  return [...rows.values()];
}

function rowId(key: unknown[]): string {
  return JSON.stringify(key.map(String));
}

/** The row's key column values from the event's key, in primary-key order; a string says why not. */
function rowKey(block: RowMappingBlock, event: DomainEvent, primaryKey: string[]): unknown[] | string {
  const key: unknown[] = [];
  for (const column of primaryKey) {
    const part = block.key.find((k) => k.column === column);
    const value = part ? event.entityKey[part.field] : undefined;
    if (value === undefined) return `${event.type} ${event.entityId}: no value for key column ${column}`;
    key.push(value);
  }
  return key;
}

function rowOf(plan: Plan, key: unknown[]): RowPlan {
  const id = rowId(key);
  let row = plan.rows.get(id);
  if (!row) {
    row = { key, id, delete: false, set: new Map(), known: new Map(), inputs: new Set(), guard: new Map(), insertable: false };
    plan.rows.set(id, row);
  }
  return row;
}

/** Records a guard row in the plan and in the running guard (later events of the batch compare with it). */
function record(plan: Plan, ctx: PlanContext, key: string, row: GuardRow, with_: RowPlan | undefined): void {
  ctx.guard.set(key, row);
  plan.owners.get(key)?.guard.delete(key);
  plan.observed.delete(key);
  if (with_) {
    with_.guard.set(key, row);
    plan.owners.set(key, with_);
  } else {
    plan.observed.set(key, row);
    plan.owners.delete(key);
  }
}

/** Why a mapping cannot write this table: columns it names that the table lacks, a key that is not the table's. */
export function mappingProblems(mapping: RowMapping, table: TableInfo, softDeleteColumn?: string): string[] {
  const problems: string[] = [];
  const columns = new Set(table.columns.map((c) => c.name));
  for (const block of mapping.blocks) {
    const keyColumns = block.key.map((k) => k.column);
    if (keyColumns.length !== table.primaryKey.length || !table.primaryKey.every((c) => keyColumns.includes(c))) {
      problems.push(`${block.event}'s key (${keyColumns.join(', ')}) is not the table's primary key (${table.primaryKey.join(', ')})`);
    }
    for (const f of block.fields) if (!columns.has(f.column)) problems.push(`${block.event}.${f.field}: no column ${f.column}`);
  }
  if (softDeleteColumn !== undefined && !columns.has(softDeleteColumn)) problems.push(`onDelete.softDelete: no column ${softDeleteColumn}`);
  return problems;
}

/**
 * The mapping as the table lets it be written: a field whose column the database cannot take a
 * domain value into faithfully (LegacyWriteSql.unwritable: SQL Server's sql_variant) is not
 * writable, as a field with a one-way conversion is, so an event that changes it is dead-lettered
 * with NOT_WRITABLE and never written approximately.
 */
export function withUnwritableColumns(mapping: RowMapping, table: TableInfo, unwritable: ((column: Column) => string | undefined) | undefined): RowMapping {
  if (!unwritable) return mapping;
  const why = (name: string): string | undefined => {
    const column = table.columns.find((c) => c.name === name);
    return column ? unwritable(column) : undefined;
  };
  return {
    ...mapping,
    blocks: mapping.blocks.map((block) => ({
      ...block,
      fields: block.fields.map((f) => (f.notWritable || !why(f.column) ? f : { ...f, notWritable: why(f.column)! })),
    })),
  };
}
