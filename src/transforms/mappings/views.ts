import { Headers, type Origin, type TransformInput } from '../../core';
import { ValueError } from './types';
import { avroName as cleanAvroName } from '../../runtime/avro';

/**
 * One input record seen the same way whatever it came from: which named values (legacy columns,
 * Salesforce fields) it carries, which of them changed, and which are merely unknown. Mappings read
 * inputs only through this, so the legacy and Salesforce rules live here and nowhere else.
 */
export interface ChangeView {
  /** `upsert`: the entity exists with these values; `delete`: it is gone. */
  op: 'upsert' | 'delete';
  /** The input carries every value (insert, snapshot, create, undelete, reconciled): all are known and changed. */
  full: boolean;
  /** Whether the input carries `name`'s current value (a null then means NULL, set to null). */
  known(name: string): boolean;
  /** The current value (after the change; for a delete the last one, e.g. for its key). */
  value(name: string): unknown;
  /** Whether this change changed `name`. */
  changed(name: string): boolean;
  /** The value before the change, where the input has it (legacy updates). */
  previous(name: string): { known: boolean; value?: unknown };
  /** Why `name`'s value cannot be used (a Salesforce diff instead of a value), if so. */
  unusable(name: string): string | undefined;
  sourceCommitTime: number;
  origin: Origin;
  /** The input in words, for dead-letter reasons: `record 003… of Contact`, `legacy.app.users/0@42`. */
  label(): string;
}

export type InputFormat = 'legacy-changelog' | 'salesforce-cdc';

/** The row field of a column (runtime avroName, the changelog's rule), cleaned once per column name. */
export function avroName(name: string): string {
  let field = AVRO_NAMES.get(name);
  if (field === undefined) {
    field = cleanAvroName(name);
    if (AVRO_NAMES.size < 10_000) AVRO_NAMES.set(name, field);
  }
  return field;
}

/** Column names are few and met on every record: each is cleaned once. */
const AVRO_NAMES = new Map<string, string>();

const NO_COLUMNS: ReadonlySet<string> = new Set();

export function isEcho(input: TransformInput): boolean {
  return input.headers[Headers.echo] === 'true' || input.value?.echo === true;
}

export function viewOf(format: InputFormat, input: TransformInput): ChangeView {
  return format === 'legacy-changelog' ? legacyView(input) : salesforceView(input);
}

function bad(message: string): never {
  throw new ValueError('BAD_INPUT', message);
}

function commitTime(value: unknown, what: string): number {
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string') {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return ms;
  }
  return bad(`${what} is ${value === null || value === undefined ? 'missing' : `not a time: ${String(value)}`}`);
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  return a === b;
}

/**
 * A legacy changelog record (docs/import.md, Records). Columns the change was recorded without
 * (`banyan.missing.columns`) are unknown: their null is not NULL, so they neither change nor carry
 * a value. A key change arrives as a delete of the old key and an insert of the new one, and maps
 * as exactly that.
 */
export function legacyView(input: TransformInput): ChangeView {
  const value = input.value ?? bad('no value');
  const op = value.op;
  const before = value.before as Row | null | undefined;
  const after = value.after as Row | null | undefined;
  const source = (value.source ?? {}) as Row;
  // Checked before the op, as ever: a record without its commit time is refused for that first.
  const sourceCommitTime = commitTime(source.changedAt, 'source.changedAt');
  switch (op) {
    case 'insert':
    case 'snapshot':
      if (!after) bad(`${op} without an after-image`);
      return new LegacyFullView(input, source, sourceCommitTime, before, after);
    case 'update':
      if (!after) bad('update without an after-image');
      return new LegacyUpdateView(input, source, sourceCommitTime, before, after);
    case 'delete':
      if (!before) bad('delete without a before-image');
      return new LegacyDeleteView(input, source, sourceCommitTime, before, after);
    default:
      return bad(`unknown op ${JSON.stringify(op)}`);
  }
}

type Row = Record<string, unknown>;

/**
 * What every legacy view shares. Classes rather than closures made per record: mapping is the
 * transform's hot path (docs/performance.md, Transform).
 */
abstract class LegacyView implements ChangeView {
  abstract readonly op: 'upsert' | 'delete';
  abstract readonly full: boolean;
  readonly origin = 'legacy' as const;
  private readonly missing: ReadonlySet<string>;

  constructor(
    private readonly input: TransformInput,
    private readonly source: Row,
    readonly sourceCommitTime: number,
    protected readonly before: Row | null | undefined,
    protected readonly after: Row | null | undefined,
  ) {
    const missingHeader = input.headers[Headers.missingColumns];
    this.missing = missingHeader ? new Set(missingHeader.split(',').filter(Boolean)) : NO_COLUMNS;
  }

  abstract known(column: string): boolean;
  abstract value(column: string): unknown;
  abstract changed(column: string): boolean;
  abstract previous(column: string): { known: boolean; value?: unknown };

  unusable(): string | undefined {
    return undefined;
  }

  // Only a dead letter reads it: made when asked.
  label(): string {
    const { input, source } = this;
    return `${input.topic}/${input.partition}@${input.offset} (${String(source.table ?? 'legacy table')} position ${String(source.position ?? '?')})`;
  }

  protected has(image: Row | null | undefined, column: string): boolean {
    return !!image && !this.missing.has(column) && Object.hasOwn(image, avroName(column));
  }

  protected read(image: Row | null | undefined, column: string): unknown {
    return this.has(image, column) ? (image![avroName(column)] ?? null) : null;
  }
}

/** An insert or a snapshot row: every recorded column is known and changed. */
class LegacyFullView extends LegacyView {
  readonly op = 'upsert' as const;
  readonly full = true;
  known(column: string): boolean {
    return this.has(this.after, column);
  }
  value(column: string): unknown {
    return this.read(this.after, column);
  }
  changed(column: string): boolean {
    return this.has(this.after, column);
  }
  previous(): { known: boolean; value?: unknown } {
    return { known: false };
  }
}

class LegacyUpdateView extends LegacyView {
  readonly op = 'upsert' as const;
  readonly full = false;
  known(column: string): boolean {
    return this.has(this.after, column);
  }
  value(column: string): unknown {
    return this.read(this.after, column);
  }
  // Without a before-image every recorded column counts as changed: too much, never too little.
  changed(column: string): boolean {
    const { before, after } = this;
    return this.has(after, column) && (!before || !this.has(before, column) || !sameValue(this.read(before, column), this.read(after, column)));
  }
  previous(column: string): { known: boolean; value?: unknown } {
    return this.has(this.before, column) ? { known: true, value: this.read(this.before, column) } : { known: false };
  }
}

class LegacyDeleteView extends LegacyView {
  readonly op = 'delete' as const;
  readonly full = false;
  known(column: string): boolean {
    return this.has(this.before, column);
  }
  value(column: string): unknown {
    return this.read(this.before, column);
  }
  changed(): boolean {
    return false;
  }
  previous(column: string): { known: boolean; value?: unknown } {
    return this.has(this.before, column) ? { known: true, value: this.read(this.before, column) } : { known: false };
  }
}

/**
 * A Salesforce CDC record (docs/salesforce-cdc.md, Records). create, undelete and reconciled carry
 * every field; an update only its changed fields, named in `changedFields` by their CDC names
 * (compound components dotted: `MailingAddress.City`); a field present with null was set to null,
 * an absent one is unchanged. Fields the channel enriches (the external id) are present but not
 * changed. A field in `diffFields` holds a diff, not a value.
 */
export function salesforceView(input: TransformInput): ChangeView {
  const value = input.value ?? bad('no value');
  const op = value.op;
  const fields = (value.fields ?? {}) as Record<string, unknown>;
  const header = (value.header ?? {}) as Record<string, unknown>;
  const changedFields = new Set((value.changedFields as string[] | undefined) ?? []);
  const nulledFields = new Set((value.nulledFields as string[] | undefined) ?? []);
  const diffFields = new Set((value.diffFields as string[] | undefined) ?? []);
  const label = () => `record ${String(value.recordId ?? '?')} of ${String(value.entity ?? 'Salesforce')} (${input.topic}/${input.partition}@${input.offset})`;
  // Re-reads carry the record's SystemModstamp as commit time, which is also the Kafka timestamp.
  const sourceCommitTime = header.commitTimestamp === null || header.commitTimestamp === undefined ? input.timestamp : commitTime(header.commitTimestamp, 'header.commitTimestamp');
  const parent = (name: string) => (name.includes('.') ? name.slice(0, name.indexOf('.')) : undefined);
  const named = (set: Set<string>, name: string) => set.has(name) || (parent(name) !== undefined && set.has(parent(name)!));
  const present = (name: string) => Object.hasOwn(fields, name) || named(nulledFields, name);
  const base = {
    sourceCommitTime,
    origin: 'salesforce' as const,
    label,
    value: (name: string) => (Object.hasOwn(fields, name) ? (fields[name] ?? null) : null),
    previous: () => ({ known: false }),
    unusable: (name: string) =>
      named(diffFields, name) ? `field ${name} carries a diff, not its value (diffFields): subscribe without diffs` : undefined,
  };

  switch (op) {
    case 'create':
    case 'undelete':
    case 'reconciled':
      // Every field the source could read is there (an empty one as null): one that is absent (not
      // in the object's describe, hidden by field-level security) is unknown, never a known null.
      return { ...base, op: 'upsert', full: true, known: (name) => Object.hasOwn(fields, name), changed: (name) => Object.hasOwn(fields, name) };
    case 'update':
      return {
        ...base,
        op: 'upsert',
        full: false,
        known: present,
        // A field counts as changed only when Salesforce says so: enriched fields are present too.
        changed: (name) => named(changedFields, name) || named(nulledFields, name),
      };
    case 'delete':
      return { ...base, op: 'delete', full: false, known: (name) => Object.hasOwn(fields, name), changed: () => false };
    default:
      return bad(`unknown op ${JSON.stringify(op)}`);
  }
}
