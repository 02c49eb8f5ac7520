import { BadRecordError, type Json } from '../../core';
import type { ChangeBatch, ChangeRow, Position, TableRef } from '../dialect';
import { displayName } from './sql';

/**
 * A SQL Server changelog position: `rv`, the last rowversion read, as CONVERT(…, 1) prints it
 * ('0x' and 16 upper-case hex digits, so string order is rowversion order). Right after a snapshot
 * it also has `seen`: rowversions above `rv` whose changes the snapshot already contains, which the
 * stream skips once and then forgets.
 */
export interface MssqlPosition {
  rv: string;
  seen?: string[];
}

export const START_RV = '0x0000000000000000';

export function parsePosition(position: Position | undefined): MssqlPosition {
  if (position === undefined) return { rv: START_RV };
  const rv = rowversion(position.rv, 'position.rv');
  if (position.seen === undefined) return { rv };
  if (!Array.isArray(position.seen)) throw new Error(`SQL Server changelog position: "seen" must be a list, got ${JSON.stringify(position.seen)}`);
  return { rv, seen: position.seen.map((s) => rowversion(s, 'position.seen')) };
}

export function toPosition(position: MssqlPosition): Position {
  return position.seen && position.seen.length > 0 ? { rv: position.rv, seen: position.seen } : { rv: position.rv };
}

/** Turns the rows of readChangesQuery into a batch: skips what the snapshot already had, advances. */
export function changeBatch(table: TableRef, records: Array<Record<string, unknown>>, from: MssqlPosition): ChangeBatch {
  const seen = new Set(from.seen);
  const rows: ChangeRow[] = [];
  let last = from.rv;
  for (const record of records) {
    const row = changeRow(table, record);
    last = row.position;
    if (!seen.has(row.position)) rows.push(row);
  }
  return { rows, position: toPosition({ rv: last, seen: from.seen?.filter((rv) => rv > last) }) };
}

export function changeRow(table: TableRef, record: Record<string, unknown>): ChangeRow {
  const position = rowversion(record.rv as Json, 'changelog rv');
  const bad = (message: string, cause?: unknown) =>
    new BadRecordError(`changelog row ${position} of ${displayName(table)}: ${message}`, {
      stage: 'receiving',
      context: { table: displayName(table), position },
      cause,
    });
  const op = record.op;
  if (op !== 'I' && op !== 'U' && op !== 'D') throw bad(`op is ${JSON.stringify(op)}, expected I, U or D`);
  const origin = record.origin ?? null;
  if (origin !== null && typeof origin !== 'string') throw bad('origin is not text');
  const originUser = record.origin_user ?? null;
  if (originUser !== null && typeof originUser !== 'string') throw bad('origin_user is not text');
  const image = (field: 'before_image' | 'after_image'): Record<string, string | null> | null => {
    const text = record[field];
    if (text === null || text === undefined) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(String(text));
    } catch (error) {
      throw bad(`${field} is not JSON`, error);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw bad(`${field} is not a JSON object`);
    for (const [column, value] of Object.entries(parsed)) {
      if (value !== null && typeof value !== 'string') throw bad(`${field}.${column} is not text or null`);
    }
    return parsed as Record<string, string | null>;
  };
  return {
    op,
    changedAt: Number(record.changed_ms),
    origin,
    // Only when recorded (rows with an origin tag): other rows look as they did before the column.
    ...(originUser !== null ? { originUser } : {}),
    before: image('before_image'),
    after: image('after_image'),
    position,
  };
}

function rowversion(value: Json | undefined, what: string): string {
  if (typeof value !== 'string' || !/^0x[0-9a-f]{16}$/i.test(value)) {
    throw new Error(`${what} must be '0x' and 16 hex digits (a SQL Server rowversion), got ${JSON.stringify(value)}`);
  }
  return `0x${value.slice(2).toUpperCase()}`;
}
