import type { GuardRow } from './dialect';

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
