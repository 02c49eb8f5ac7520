import { formatDateTime } from './clock.js';
import { checkRequired, checkValidationRules, coerceInput, type FieldValues } from './coerce.js';
import { ApiError, notFound } from './errors.js';
import { makeId, normalizeId } from './ids.js';
import type { FieldDef, ObjectDef, Schema } from './schema.js';

export type ChangeType = 'CREATE' | 'UPDATE' | 'DELETE' | 'UNDELETE';

/** One committed record change, the raw material of a change event. */
export interface RecordChange {
  changeType: ChangeType;
  object: ObjectDef;
  id: string;
  /** The record after the change. */
  record: Readonly<FieldValues>;
  /** For UPDATE: the fields whose value changed (the platform's LastModifiedDate included). */
  changedFields: string[];
}

/** Called before each record write with the record as it is (none on create); throws to fail the write. */
export type WriteGuard = (object: ObjectDef, existing: Readonly<FieldValues> | undefined, values: Readonly<FieldValues>) => void;

/** Raised when an external id matches several records: 300 for single upserts, a record error in collections. */
export class AmbiguousExternalIdError extends ApiError {
  constructor(field: FieldDef, readonly matchedIds: string[]) {
    super(300, 'DUPLICATE_EXTERNAL_ID', `${field.label}: more than one record found for external id field: [${matchedIds.join(', ')}]`, [field.name]);
  }
}

/**
 * The changes of one API call; undone as a whole when an allOrNone call fails. Every record it
 * writes gets the transaction's time, so identical changes in it can merge into one change event.
 */
export class Transaction {
  readonly changes: RecordChange[] = [];
  private readonly undoLog: (() => void)[] = [];

  /** `at`: the emulator clock when the call started (ms). */
  constructor(readonly at: number) {}

  record(change: RecordChange, undo: () => void): void {
    this.changes.push(change);
    this.undoLog.push(undo);
  }

  rollback(): void {
    for (const undo of this.undoLog.reverse()) undo();
    this.undoLog.length = 0;
    this.changes.length = 0;
  }
}

export interface StoreSnapshot {
  counter: number;
  records: Record<string, FieldValues[]>;
}

const sameValue = (a: unknown, b: unknown): boolean =>
  typeof a === 'string' && typeof b === 'string' ? a.toLowerCase() === b.toLowerCase() : a === b;

export class Store {
  private tables = new Map<string, Map<string, FieldValues>>();
  private counter = 0;

  constructor(
    readonly schema: Schema,
    readonly userId: string,
    private readonly guard: WriteGuard = () => {},
  ) {}

  private table(def: ObjectDef): Map<string, FieldValues> {
    let table = this.tables.get(def.name);
    if (!table) this.tables.set(def.name, (table = new Map()));
    return table;
  }

  /** Any record, deleted ones included (they sit in the recycle bin). */
  get(def: ObjectDef, id: string): Readonly<FieldValues> | undefined {
    const id18 = normalizeId(id);
    return id18 ? this.table(def).get(id18) : undefined;
  }

  records(def: ObjectDef, includeDeleted: boolean): Readonly<FieldValues>[] {
    const all = [...this.table(def).values()];
    return includeDeleted ? all : all.filter((r) => r.IsDeleted !== true);
  }

  findActiveBy(def: ObjectDef, field: FieldDef, value: unknown): Readonly<FieldValues>[] {
    return this.records(def, false).filter((r) => value !== null && sameValue(r[field.name], value));
  }

  /** The live record with this id, or the error Salesforce gives for a missing or deleted one. */
  requireActive(def: ObjectDef, id: string): Readonly<FieldValues> {
    const record = this.get(def, id);
    if (!record) throw notFound();
    if (record.IsDeleted === true) throw new ApiError(404, 'ENTITY_IS_DELETED', 'entity is deleted', []);
    return record;
  }

  create(tx: Transaction, def: ObjectDef, input: Readonly<Record<string, unknown>>): string {
    const values = coerceInput(def, input, 'create');
    this.guard(def, undefined, values);
    const now = formatDateTime(tx.at);
    const id = makeId(def.keyPrefix, this.counter + 1);
    const record: FieldValues = {};
    for (const field of def.fields) {
      if (!field.computed) record[field.name] = field.type === 'boolean' ? false : null;
    }
    Object.assign(record, values, {
      Id: id, IsDeleted: false, CreatedDate: now, CreatedById: this.userId,
      LastModifiedDate: now, LastModifiedById: this.userId, SystemModstamp: now,
    });
    this.checkIntegrity(def, record, undefined);
    this.counter += 1;
    this.table(def).set(id, record);
    tx.record({ changeType: 'CREATE', object: def, id, record, changedFields: [] }, () => this.table(def).delete(id));
    return id;
  }

  update(tx: Transaction, def: ObjectDef, id: string, input: Readonly<Record<string, unknown>>): void {
    const before = this.requireActive(def, id);
    const values = coerceInput(def, input, 'update');
    this.guard(def, before, values);
    const now = formatDateTime(tx.at);
    const after: FieldValues = { ...before, ...values, LastModifiedDate: now, LastModifiedById: this.userId, SystemModstamp: now };
    this.checkIntegrity(def, after, before.Id as string);
    const changedFields = Object.keys(values).filter((name) => before[name] !== after[name]);
    changedFields.push('LastModifiedDate');
    this.replace(tx, def, before, after, 'UPDATE', changedFields);
  }

  remove(tx: Transaction, def: ObjectDef, id: string): void {
    const before = this.requireActive(def, id);
    this.guard(def, before, {});
    const now = formatDateTime(tx.at);
    this.replace(tx, def, before, { ...before, IsDeleted: true, LastModifiedDate: now, SystemModstamp: now }, 'DELETE', []);
  }

  /** Bulk API `hardDelete`: the record leaves the org at once, without passing the recycle bin (still a DELETE change). */
  hardDelete(tx: Transaction, def: ObjectDef, id: string): void {
    const before = this.requireActive(def, id);
    this.guard(def, before, {});
    const now = formatDateTime(tx.at);
    const id18 = before.Id as string;
    this.table(def).delete(id18);
    const gone = { ...before, IsDeleted: true, LastModifiedDate: now, SystemModstamp: now };
    tx.record({ changeType: 'DELETE', object: def, id: id18, record: gone, changedFields: [] }, () => this.table(def).set(id18, { ...before }));
  }

  /** Restores a record from the recycle bin (not offered by REST; the admin handle uses it). */
  undelete(tx: Transaction, def: ObjectDef, id: string): void {
    const before = this.get(def, id);
    if (!before || before.IsDeleted !== true) throw new ApiError(400, 'UNDELETE_FAILED', 'Entity is not in the recycle bin', []);
    const now = formatDateTime(tx.at);
    const after = { ...before, IsDeleted: false, LastModifiedDate: now, SystemModstamp: now };
    this.checkIntegrity(def, after, before.Id as string);
    this.replace(tx, def, before, after, 'UNDELETE', []);
  }

  upsert(tx: Transaction, def: ObjectDef, field: FieldDef, value: string, input: Readonly<Record<string, unknown>>): { id: string; created: boolean } {
    const body = { ...input, [field.name]: value };
    const matches = this.findActiveBy(def, field, value);
    const [match, ...others] = matches;
    if (others.length > 0) throw new AmbiguousExternalIdError(field, matches.map((r) => r.Id as string));
    if (match) {
      this.update(tx, def, match.Id as string, body);
      return { id: match.Id as string, created: false };
    }
    return { id: this.create(tx, def, body), created: true };
  }

  private replace(tx: Transaction, def: ObjectDef, before: Readonly<FieldValues>, after: FieldValues, changeType: ChangeType, changedFields: string[]): void {
    const id = before.Id as string;
    this.table(def).set(id, after);
    tx.record({ changeType, object: def, id, record: after, changedFields }, () => this.table(def).set(id, { ...before }));
  }

  /** Required fields, validation rules, unique values and references, checked on the record as it would be saved. */
  private checkIntegrity(def: ObjectDef, record: Readonly<FieldValues>, ownId: string | undefined): void {
    checkRequired(def, record);
    checkValidationRules(def, record);
    for (const field of def.fields) {
      const value = record[field.name];
      if (value === null || value === undefined) continue;
      if (field.unique) {
        const clash = this.findActiveBy(def, field, value).find((r) => r.Id !== ownId);
        if (clash) {
          throw new ApiError(400, 'DUPLICATE_VALUE', `duplicate value found: ${field.name} duplicates value on record with id: ${String(clash.Id)}`, []);
        }
      }
      if (field.type === 'reference' && !field.system) this.checkReference(field, value as string);
    }
  }

  private checkReference(field: FieldDef, id: string): void {
    const target = this.schema.byPrefix(id.slice(0, 3));
    if (!target || !field.referenceTo.includes(target.name)) {
      throw new ApiError(400, 'MALFORMED_ID', `${field.label}: id value of incorrect type: ${id}`, [field.name]);
    }
    const referenced = this.get(target, id);
    if (!referenced || referenced.IsDeleted === true) {
      throw new ApiError(400, 'INVALID_CROSS_REFERENCE_KEY', `invalid cross reference id`, [field.name]);
    }
  }

  clear(): void {
    this.tables = new Map();
    this.counter = 0;
  }

  snapshot(): StoreSnapshot {
    const records: Record<string, FieldValues[]> = {};
    for (const [name, table] of this.tables) records[name] = [...table.values()];
    return { counter: this.counter, records };
  }

  restore(snapshot: StoreSnapshot): void {
    this.tables = new Map();
    this.counter = snapshot.counter;
    for (const [name, records] of Object.entries(snapshot.records)) {
      const def = this.schema.object(name);
      if (!def) throw new Error(`state holds records of ${name}, an object this emulator does not define`);
      this.tables.set(def.name, new Map(records.map((r) => [r.Id as string, { ...r }])));
    }
  }
}
