import type { PublishMode } from './cdc.js';
import type { EmulatorClock } from './clock.js';
import type { FieldValues } from './coerce.js';
import { ApiError } from './errors.js';
import { normalizeId } from './ids.js';
import type { ObjectDef } from './schema.js';

/** Rows to answer UNABLE_TO_LOCK_ROW for: by record id, or by an external id field's values. */
export interface LockRowsSpec {
  ids?: string[];
  /** Restricts `externalIds` (and `ids`) to one object. */
  object?: string;
  externalIds?: { field: string; values: string[] };
  /** How many writes fail before the lock clears on its own; unlimited when absent. */
  times?: number;
}

interface RowLock {
  ids: Set<string>;
  object?: string;
  externalIds?: { field: string; values: Set<string> };
  remaining: number;
}

export interface FaultState {
  rateLimitedCalls: number;
  failingCalls: number;
  failureStatus: 500 | 503;
  rowLocks: number;
  gapChanges: number;
  overflowChanges: number;
}

/** Faults a test turns on through the admin handle or endpoint; each is consumed as calls arrive. */
export class FaultInjector {
  private rateLimitedCalls = 0;
  private failingCalls = 0;
  private failureStatus: 500 | 503 = 503;
  private locks: RowLock[] = [];
  private gapChanges = 0;
  private overflowChanges = 0;

  rateLimitNext(calls: number): void {
    this.rateLimitedCalls = nonNegativeInteger(calls);
  }

  failNext(calls: number, status: 500 | 503): void {
    this.failingCalls = nonNegativeInteger(calls);
    this.failureStatus = status;
  }

  lockRows(spec: LockRowsSpec): void {
    const ids = (spec.ids ?? []).map((id) => normalizeId(id) ?? id);
    this.locks.push({
      ids: new Set(ids),
      ...(spec.object ? { object: spec.object.toLowerCase() } : {}),
      ...(spec.externalIds ? { externalIds: { field: spec.externalIds.field, values: new Set(spec.externalIds.values.map((v) => v.toLowerCase())) } } : {}),
      remaining: spec.times === undefined ? Infinity : nonNegativeInteger(spec.times),
    });
  }

  unlockRows(): void {
    this.locks = [];
  }

  gapNext(changes: number): void {
    this.gapChanges = nonNegativeInteger(changes);
  }

  overflowNext(changes: number): void {
    this.overflowChanges = nonNegativeInteger(changes);
  }

  reset(): void {
    this.rateLimitedCalls = 0;
    this.failingCalls = 0;
    this.locks = [];
    this.gapChanges = 0;
    this.overflowChanges = 0;
  }

  state(): FaultState {
    return {
      rateLimitedCalls: this.rateLimitedCalls,
      failingCalls: this.failingCalls,
      failureStatus: this.failureStatus,
      rowLocks: this.locks.length,
      gapChanges: this.gapChanges,
      overflowChanges: this.overflowChanges,
    };
  }

  /** The whole-call failure a REST call gets, if one is armed; consumes it. */
  takeCallFault(): ApiError | undefined {
    if (this.rateLimitedCalls > 0) {
      this.rateLimitedCalls -= 1;
      return new ApiError(403, 'REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.');
    }
    if (this.failingCalls > 0) {
      this.failingCalls -= 1;
      return this.failureStatus === 503
        ? new ApiError(503, 'SERVER_UNAVAILABLE', 'Server temporarily unavailable, please retry later.')
        : new ApiError(500, 'UNKNOWN_EXCEPTION', 'An unexpected error occurred. Please include this ErrorId if you contact support: 1907359183-1 (-1178765561)');
    }
    return undefined;
  }

  /** The store's write guard: a locked row fails its write as Salesforce's UNABLE_TO_LOCK_ROW. */
  readonly guard = (object: ObjectDef, existing: Readonly<FieldValues> | undefined, values: Readonly<FieldValues>): void => {
    const id = existing?.Id as string | undefined;
    const lock = this.locks.find((l) => l.remaining > 0 && (!l.object || l.object === object.name.toLowerCase()) && (
      (id !== undefined && l.ids.has(id)) || (l.externalIds !== undefined && matchesExternalId(l.externalIds, values, existing))
    ));
    if (!lock) return;
    lock.remaining -= 1;
    this.locks = this.locks.filter((l) => l.remaining > 0);
    const message = id ? `unable to obtain exclusive access to this record or 1 records: ${id}` : 'unable to obtain exclusive access to this record';
    throw new ApiError(400, 'UNABLE_TO_LOCK_ROW', message, []);
  };

  readonly nextPublishMode = (): PublishMode => {
    if (this.overflowChanges > 0) {
      this.overflowChanges -= 1;
      return 'overflow';
    }
    if (this.gapChanges > 0) {
      this.gapChanges -= 1;
      return 'gap';
    }
    return 'normal';
  };
}

function matchesExternalId(spec: { field: string; values: Set<string> }, values: Readonly<FieldValues>, existing: Readonly<FieldValues> | undefined): boolean {
  const key = Object.keys(values).find((k) => k.toLowerCase() === spec.field.toLowerCase()) ?? spec.field;
  const value = values[key] ?? existing?.[key];
  return typeof value === 'string' && spec.values.has(value.toLowerCase());
}

function nonNegativeInteger(n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`expected a count of zero or more, got ${n}`);
  return n;
}

/**
 * The org's daily API request budget (DailyApiRequests). Salesforce counts over a rolling 24 hours;
 * the emulator counts per 24-hour window of its clock, which behaves the same for tests.
 */
export class ApiUsage {
  private used = 0;
  private windowStart: number;

  constructor(private readonly clock: EmulatorClock, private max: number) {
    this.windowStart = clock.now();
  }

  private roll(): void {
    const day = 24 * 60 * 60 * 1000;
    if (this.clock.now() - this.windowStart >= day) {
      this.used = 0;
      this.windowStart = this.clock.now();
    }
  }

  /** Counts one call; false when the budget is spent and the call must be refused. */
  count(): boolean {
    this.roll();
    if (this.used >= this.max) return false;
    this.used += 1;
    return true;
  }

  set(values: { used?: number; max?: number }): void {
    if (values.max !== undefined) this.max = nonNegativeInteger(values.max);
    if (values.used !== undefined) this.used = nonNegativeInteger(values.used);
  }

  current(): { used: number; max: number } {
    this.roll();
    return { used: this.used, max: this.max };
  }

  header(): string {
    const { used, max } = this.current();
    return `api-usage=${used}/${max}`;
  }
}
