import type { Column, GuardRow, TableInfo } from './dialect';
import { writtenName } from './shared-catalog';

/** A domain value as a driver parameter where every driver takes it the same way (bigint as its digits). */
export function domainParameter(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** A guard row's values in the column order of the guard table. */
export function guardValues(row: GuardRow): unknown[] {
  return [row.entity, row.entityId, row.field, row.versionMs, row.origin, row.eventId, row.written];
}

/** `(?, ?), (?, ?)`: `count` rows of `width` placeholders. */
export function placeholders(width: number, count: number): string {
  const one = `(${Array.from({ length: width }, () => '?').join(', ')})`;
  return Array.from({ length: count }, () => one).join(', ');
}

/** The table's column of that name; a name the table lacks is a clear error, not an undefined type. */
export function columnOf(table: TableInfo, name: string): Column {
  const found = table.columns.find((c) => c.name === name);
  if (!found) throw new Error(`column "${name}" is not among the columns of ${writtenName(table)}`);
  return found;
}
