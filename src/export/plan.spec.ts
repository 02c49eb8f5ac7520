import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { Origin, RowMapping } from '../core';
import type { GuardRow } from '../dialects/dialect';
import { builtinCatalog, type DomainEvent } from '../domain';
import type { ChangeTypeState } from '../runtime/change-types';
import { transformSchema } from '../transforms/config';
import { reverseMapping } from '../transforms/mappings';
import { mssqlWrites } from '../dialects/mssql/writes';
import { decide, guardKey, newer, planBatch, withUnwritableColumns, type Plan, type RowPlan, type Version } from './plan';

/**
 * The legacy sink's pure decisions (plan.ts), through the mapping a user configures: banyan.yaml's
 * legacy-users transform (one users row: UserChanged and AddressChanged, key id), parsed by the
 * real transform schema and reversed against the built-in catalog.
 */

const LEGACY_USERS = `
name: legacy-users
from: legacy.demo.users
format: legacy-changelog
changeTypes: [user, address]
events:
  - event: UserChanged
    key: id
    fields:
      firstName: first_name
      lastName: last_name
      email: email
  - event: AddressChanged
    key: id
    fields:
      street: street
      city: city
      postalCode: postal_code
      state: state
      country: country
`;

/** The same table with conversions: a trimmed first name (not reversible) and an enum map on state. */
const CONVERTED = `
name: legacy-users-converted
from: legacy.demo.users
format: legacy-changelog
events:
  - event: UserChanged
    key: id
    fields:
      firstName: { column: first_name, convert: [trim] }
      lastName: last_name
      email: email
  - event: AddressChanged
    key: id
    fields:
      street: street
      city: city
      postalCode: postal_code
      state: { column: state, convert: [{ map: { A: active, I: inactive } }] }
      country: country
`;

const mappingOf = (yaml: string): RowMapping => reverseMapping(transformSchema.parse(parseYaml(yaml)), builtinCatalog());
const USERS = mappingOf(LEGACY_USERS);
const CONVERTED_USERS = mappingOf(CONVERTED);

const USER_COLUMNS = ['first_name', 'last_name', 'email'];
const ADDRESS_COLUMNS = ['street', 'city', 'postal_code', 'state', 'country'];
const ROW_1 = JSON.stringify(['1']);

type EventType = 'UserChanged' | 'UserDeleted' | 'AddressChanged' | 'AddressDeleted' | 'OrderChanged';

interface EventOptions {
  origin?: Origin;
  eventId?: string;
  changed?: string[];
  known?: string[];
  key?: Record<string, string>;
}

let seq = 0;
/** A domain event as the decoder hands it to the sink (the shape of serviceEvent in test/legacy-databases.ts). */
function event(type: EventType, id: number, data: Record<string, unknown>, at: number, o: EventOptions = {}): DomainEvent {
  seq++;
  const entity = type.startsWith('Address') ? 'address' : type.startsWith('Order') ? 'order' : 'user';
  return {
    eventId: o.eventId ?? `event-${String(seq).padStart(5, '0')}`,
    type,
    entity,
    entityId: String(id),
    entityKey: o.key ?? { id: String(id) },
    sourceCommitTime: at,
    origin: o.origin ?? 'domain',
    causation: { topic: 'service.users', partition: 0, offset: String(seq) },
    correlationId: `correlation-${seq}`,
    changedFields: o.changed ?? Object.keys(data),
    knownFields: o.known ?? Object.keys(data),
    schemaVersion: 1,
    data,
  };
}

const version = (e: DomainEvent): Version => ({ versionMs: e.sourceCommitTime, origin: e.origin, eventId: e.eventId });

/** The guard row an event leaves for `field`. */
function guardOf(e: DomainEvent, field: string, written: boolean): GuardRow {
  return { entity: e.entity, entityId: e.entityId, field, ...version(e), written };
}

/** A guard as the sink reads it before a batch. */
function guardWith(...rows: GuardRow[]): Map<string, GuardRow> {
  return new Map(rows.map((r) => [guardKey(r.entity, r.entityId, r.field), r]));
}

function entry(entity: string, entityId: string, field: string, versionMs: number, origin: Origin, eventId: string, written: boolean): GuardRow {
  return { entity, entityId, field, versionMs, origin, eventId, written };
}

interface Options {
  states?: Partial<Record<string, ChangeTypeState>>;
  guard?: Map<string, GuardRow>;
  softDelete?: { column: string; value: unknown };
  mapping?: RowMapping;
}

function plan(events: DomainEvent[], o: Options = {}): { plan: Plan; guard: Map<string, GuardRow> } {
  const guard = o.guard ?? new Map<string, GuardRow>();
  const result = planBatch(
    events.map((e, index) => ({ index, event: e })),
    {
      mapping: o.mapping ?? USERS,
      primaryKey: ['id'],
      stateOf: (entity) => o.states?.[entity] ?? 'dual',
      guard,
      ...(o.softDelete ? { softDelete: o.softDelete } : {}),
      parameter: (_column, value) => value,
    },
  );
  return { plan: result, guard };
}

/** A row plan as plain data. */
function view(row: RowPlan | undefined) {
  if (!row) return undefined;
  return {
    key: row.key,
    delete: row.delete,
    insertable: row.insertable,
    set: Object.fromEntries(row.set),
    known: Object.fromEntries(row.known),
    inputs: [...row.inputs].sort(),
    guard: [...row.guard.values()].sort((a, b) => a.field.localeCompare(b.field)),
  };
}

const rowsOf = (p: Plan) => [...p.rows.values()].map(view);
const observedOf = (p: Plan) => [...p.observed.values()].sort((a, b) => a.field.localeCompare(b.field));
const byField = (rows: GuardRow[]) => [...rows].sort((a, b) => a.field.localeCompare(b.field));

/** What a plan does, with nothing left out (each test compares all of it). */
function outcome(p: Plan) {
  return {
    rows: rowsOf(p),
    observed: observedOf(p),
    refused: p.refused,
    dropped: p.dropped,
    reports: p.reports.map((r) => ({ type: r.event.type, reason: r.reason, fields: r.fields })),
    stale: p.stale,
    observedFields: p.observedFields,
  };
}

const NOTHING = { rows: [], observed: [], refused: [], dropped: {}, reports: [], stale: 0, observedFields: 0 };

describe('the reverse of legacy-users as the plan sees it', () => {
  it('maps UserChanged and AddressChanged to one users row keyed by id, the user block first', () => {
    expect(USERS.rowEntity).toBe('user');
    expect(USERS.blocks.map((b) => [b.event, b.deletedEvent, b.entity, b.key])).toEqual([
      ['UserChanged', 'UserDeleted', 'user', [{ field: 'id', column: 'id' }]],
      ['AddressChanged', 'AddressDeleted', 'address', [{ field: 'id', column: 'id' }]],
    ]);
  });
});

describe('newer', () => {
  const at = (versionMs: number, origin: Origin, eventId: string): Version => ({ versionMs, origin, eventId });

  it('is true when nothing is known', () => {
    expect(newer(at(0, 'domain', 'a'), undefined)).toBe(true);
  });

  it('orders by source commit time first, whatever the origin and id', () => {
    expect(newer(at(1001, 'domain', 'a'), at(1000, 'legacy', 'z'))).toBe(true);
    expect(newer(at(1000, 'legacy', 'z'), at(1001, 'domain', 'a'))).toBe(false);
  });

  it('at the same time: legacy beats salesforce beats domain, in both directions', () => {
    expect(newer(at(1000, 'legacy', 'a'), at(1000, 'salesforce', 'z'))).toBe(true);
    expect(newer(at(1000, 'salesforce', 'z'), at(1000, 'legacy', 'a'))).toBe(false);
    expect(newer(at(1000, 'salesforce', 'a'), at(1000, 'domain', 'z'))).toBe(true);
    expect(newer(at(1000, 'domain', 'z'), at(1000, 'salesforce', 'a'))).toBe(false);
    expect(newer(at(1000, 'legacy', 'a'), at(1000, 'domain', 'z'))).toBe(true);
    expect(newer(at(1000, 'domain', 'z'), at(1000, 'legacy', 'a'))).toBe(false);
  });

  it('at the same time and origin: the greater event id; the same version is not newer than itself', () => {
    expect(newer(at(1000, 'domain', 'event-b'), at(1000, 'domain', 'event-a'))).toBe(true);
    expect(newer(at(1000, 'domain', 'event-a'), at(1000, 'domain', 'event-b'))).toBe(false);
    expect(newer(at(1000, 'domain', 'event-a'), at(1000, 'domain', 'event-a'))).toBe(false);
  });
});

describe('decide', () => {
  it.each<[ChangeTypeState, Origin, ReturnType<typeof decide>]>([
    ['legacy-owned', 'legacy', 'observe'],
    ['legacy-owned', 'domain', 'report'],
    ['legacy-owned', 'salesforce', 'report'],
    ['dual', 'legacy', 'observe'],
    ['dual', 'domain', 'write'],
    ['dual', 'salesforce', 'write'],
    ['new-owned', 'legacy', 'report'],
    ['new-owned', 'domain', 'write'],
    ['new-owned', 'salesforce', 'write'],
    ['decommissioned', 'legacy', 'drop'],
    ['decommissioned', 'domain', 'drop'],
    ['decommissioned', 'salesforce', 'drop'],
  ])('%s, an event of origin %s: %s', (state, origin, action) => {
    expect(decide(state, origin)).toBe(action);
    expect(decide(state, origin, 'legacy')).toBe(action);
  });

  it.each<[ChangeTypeState, Origin, ReturnType<typeof decide>]>([
    ['legacy-owned', 'legacy', 'write'],
    ['legacy-owned', 'domain', 'report'],
    ['legacy-owned', 'salesforce', 'observe'],
    ['dual', 'legacy', 'write'],
    ['dual', 'domain', 'write'],
    ['dual', 'salesforce', 'observe'],
    ['new-owned', 'legacy', 'report'],
    ['new-owned', 'domain', 'write'],
    ['new-owned', 'salesforce', 'observe'],
    ['decommissioned', 'legacy', 'drop'],
    ['decommissioned', 'domain', 'drop'],
    ['decommissioned', 'salesforce', 'drop'],
  ])('to Salesforce in %s, an event of origin %s: %s', (state, origin, action) => {
    expect(decide(state, origin, 'salesforce')).toBe(action);
  });
});

describe('planBatch: last writer wins per field', () => {
  const seeded = () => guardWith(entry('user', '1', 'email', 1000, 'domain', 'seed', true));

  it('a newer event writes its field and moves the guard to its version', () => {
    const e = event('UserChanged', 1, { email: 'new@example.com' }, 2000);
    const { plan: p, guard } = plan([e], { guard: seeded() });
    expect(outcome(p)).toEqual({
      ...NOTHING,
      rows: [
        {
          key: ['1'],
          delete: false,
          insertable: true,
          set: { email: 'new@example.com' },
          known: { email: 'new@example.com' },
          inputs: [0],
          guard: [guardOf(e, 'email', true)],
        },
      ],
    });
    expect(p.rows.get(ROW_1)?.id).toBe(ROW_1);
    expect(guard.get(guardKey('user', '1', 'email'))).toEqual(guardOf(e, 'email', true));
    expect(p.owners.get(guardKey('user', '1', 'email'))).toBe(p.rows.get(ROW_1));
  });

  it('an older event is stale: nothing written, the guard kept', () => {
    const { plan: p, guard } = plan([event('UserChanged', 1, { email: 'old@example.com' }, 500)], { guard: seeded() });
    expect(outcome(p)).toEqual({ ...NOTHING, dropped: { stale: 1 }, stale: 1 });
    expect([...guard.values()]).toEqual([entry('user', '1', 'email', 1000, 'domain', 'seed', true)]);
  });

  it('the same event again (a replay) writes nothing', () => {
    const e = event('UserChanged', 1, { email: 'new@example.com', firstName: 'Ada' }, 2000);
    const first = plan([e]);
    expect(rowsOf(first.plan)).toHaveLength(1);
    const written = new Map(first.guard);
    const again = plan([e], { guard: first.guard });
    expect(outcome(again.plan)).toEqual({ ...NOTHING, dropped: { stale: 1 }, stale: 2 });
    expect(again.guard).toEqual(written);
  });

  it('decides each field on its own: the newer one is written, the older one is stale', () => {
    const guard = guardWith(entry('user', '1', 'email', 3000, 'legacy', 'seed-email', false), entry('user', '1', 'firstName', 500, 'domain', 'seed-name', true));
    const e = event('UserChanged', 1, { email: 'mid@example.com', firstName: 'Ada' }, 2000);
    const { plan: p } = plan([e], { guard });
    expect(outcome(p)).toEqual({
      ...NOTHING,
      rows: [
        {
          key: ['1'],
          delete: false,
          insertable: true,
          set: { first_name: 'Ada' },
          known: { email: 'mid@example.com', first_name: 'Ada' },
          inputs: [0],
          guard: [guardOf(e, 'firstName', true)],
        },
      ],
      stale: 1,
    });
  });
});

describe('planBatch: ties', () => {
  /** Both arrival orders of two events, each into an empty guard: the loser is stale only when it arrives second. */
  const bothOrders = (loser: DomainEvent, winner: DomainEvent) => [
    { ...plan([loser, winner]), stale: 0 },
    { ...plan([winner, loser]), stale: 1 },
  ];

  it('same time: salesforce beats domain (even with the smaller event id), whichever arrives first', () => {
    const domain = event('UserChanged', 1, { email: 'domain@example.com' }, 1000, { eventId: 'zzz' });
    const salesforce = event('UserChanged', 1, { email: 'salesforce@example.com' }, 1000, { origin: 'salesforce', eventId: 'aaa' });
    for (const { plan: p, guard, stale } of bothOrders(domain, salesforce)) {
      expect(rowsOf(p).map((r) => r!.set)).toEqual([{ email: 'salesforce@example.com' }]);
      expect(rowsOf(p).map((r) => r!.guard)).toEqual([[guardOf(salesforce, 'email', true)]]);
      expect(p.stale).toBe(stale);
      expect(guard.get(guardKey('user', '1', 'email'))).toEqual(guardOf(salesforce, 'email', true));
    }
  });

  it('same time and origin: the greater event id wins, whichever arrives first', () => {
    const a = event('UserChanged', 1, { email: 'a@example.com' }, 1000, { eventId: 'event-a' });
    const b = event('UserChanged', 1, { email: 'b@example.com' }, 1000, { eventId: 'event-b' });
    for (const { plan: p, guard, stale } of bothOrders(a, b)) {
      expect(rowsOf(p).map((r) => r!.set)).toEqual([{ email: 'b@example.com' }]);
      expect(p.stale).toBe(stale);
      expect(guard.get(guardKey('user', '1', 'email'))).toEqual(guardOf(b, 'email', true));
    }
  });

  it('same time: legacy beats domain, whichever arrives first (the row ends with the legacy value)', () => {
    const domain = event('UserChanged', 1, { email: 'domain@example.com' }, 1000, { eventId: 'zzz' });
    const legacy = event('UserChanged', 1, { email: 'legacy@example.com' }, 1000, { origin: 'legacy', eventId: 'aaa' });
    // Domain first: its write is planned, then the legacy value is newer than Banyan's write and is written back.
    const [domainFirst, legacyFirst] = bothOrders(domain, legacy);
    expect(rowsOf(domainFirst!.plan).map((r) => r!.set)).toEqual([{ email: 'legacy@example.com' }]);
    expect(domainFirst!.guard.get(guardKey('user', '1', 'email'))).toMatchObject({ ...version(legacy) });
    // Legacy first: it is observed (the row holds it); the domain event is stale.
    expect(rowsOf(legacyFirst!.plan)).toEqual([]);
    expect(observedOf(legacyFirst!.plan)).toEqual([guardOf(legacy, 'email', false)]);
    expect([legacyFirst!.plan.observedFields, legacyFirst!.plan.stale]).toEqual([1, 1]);
    expect(legacyFirst!.guard.get(guardKey('user', '1', 'email'))).toMatchObject({ ...version(legacy) });
  });
});

describe('planBatch: one row per key', () => {
  it('several events of one row become one RowPlan with the newest value per column; user and address of one id share it', () => {
    const e1 = event('UserChanged', 1, { email: 'v1@example.com' }, 1000);
    const e2 = event('UserChanged', 1, { email: 'v2@example.com', firstName: 'Ada' }, 2000);
    const e3 = event('AddressChanged', 1, { city: 'Bern' }, 1500);
    const e4 = event('UserChanged', 1, { email: 'v0@example.com' }, 500);
    const e5 = event('UserChanged', 2, { email: 'other@example.com' }, 1000);
    const { plan: p } = plan([e1, e2, e3, e4, e5]);
    expect(outcome(p)).toEqual({
      ...NOTHING,
      rows: [
        {
          key: ['1'],
          delete: false,
          insertable: true,
          set: { email: 'v2@example.com', first_name: 'Ada', city: 'Bern' },
          known: { email: 'v2@example.com', first_name: 'Ada', city: 'Bern' },
          inputs: [0, 1, 2],
          guard: [guardOf(e3, 'city', true), guardOf(e2, 'email', true), guardOf(e2, 'firstName', true)],
        },
        {
          key: ['2'],
          delete: false,
          insertable: true,
          set: { email: 'other@example.com' },
          known: { email: 'other@example.com' },
          inputs: [4],
          guard: [guardOf(e5, 'email', true)],
        },
      ],
      dropped: { stale: 1 },
      stale: 1,
    });
  });

  it('sets the same values when the newest event arrives first', () => {
    const e1 = event('UserChanged', 1, { email: 'v1@example.com' }, 1000);
    const e2 = event('UserChanged', 1, { email: 'v2@example.com', firstName: 'Ada' }, 2000);
    const e3 = event('AddressChanged', 1, { city: 'Bern' }, 1500);
    const { plan: p } = plan([e2, e3, e1]);
    expect(rowsOf(p).map((r) => [r!.set, r!.inputs])).toEqual([[{ email: 'v2@example.com', first_name: 'Ada', city: 'Bern' }, [0, 1]]]);
    expect(p.stale).toBe(1);
  });
});

describe('planBatch: changed and known fields', () => {
  it('sets only the changed fields; the known ones fill `known` for an insert; an unknown field is neither', () => {
    const e = event('UserChanged', 1, { firstName: 'Ada', lastName: null, email: 'ada@example.com' }, 1000, { changed: ['email'], known: ['firstName', 'email'] });
    const { plan: p, guard } = plan([e]);
    expect(rowsOf(p)).toEqual([
      {
        key: ['1'],
        delete: false,
        insertable: true,
        set: { email: 'ada@example.com' },
        known: { first_name: 'Ada', email: 'ada@example.com' },
        inputs: [0],
        guard: [guardOf(e, 'email', true)],
      },
    ]);
    expect([...guard.keys()]).toEqual([guardKey('user', '1', 'email')]);
  });

  it('an event none of whose changed fields the block maps makes nothing (no-mapped-field)', () => {
    const e = event('UserChanged', 1, { email: 'ada@example.com', nickname: 'ada' }, 1000, { changed: ['nickname'] });
    expect(outcome(plan([e]).plan)).toEqual({ ...NOTHING, dropped: { 'no-mapped-field': 1 } });
  });
});

describe('planBatch: lifecycle', () => {
  const seeded = () => guardWith(entry('user', '1', 'email', 1000, 'legacy', 'seed', false));

  it('legacy-owned: a domain event is reported, not written, and the guard is untouched', () => {
    const e = event('UserChanged', 1, { email: 'new@example.com' }, 2000);
    const { plan: p, guard } = plan([e], { states: { user: 'legacy-owned' }, guard: seeded() });
    expect(outcome(p)).toEqual({ ...NOTHING, dropped: { 'reported:legacy-owned': 1 }, reports: [{ type: 'UserChanged', reason: 'lifecycle:legacy-owned', fields: ['email'] }] });
    expect(p.reports[0]!.event).toBe(e);
    expect(guard).toEqual(seeded());
  });

  it('legacy-owned: a legacy event is observed (a guard row with written=false, no RowPlan)', () => {
    const e = event('UserChanged', 1, { email: 'legacy@example.com' }, 2000, { origin: 'legacy' });
    const { plan: p, guard } = plan([e], { states: { user: 'legacy-owned' }, guard: seeded() });
    expect(rowsOf(p)).toEqual([]);
    expect(observedOf(p)).toEqual([guardOf(e, 'email', false)]);
    expect([p.observedFields, p.stale, p.refused, p.reports]).toEqual([1, 0, [], []]);
    expect(guard.get(guardKey('user', '1', 'email'))).toEqual(guardOf(e, 'email', false));
  });

  it('dual: a domain event is written, a legacy event observed', () => {
    const domain = event('UserChanged', 1, { email: 'domain@example.com' }, 2000);
    const legacy = event('AddressChanged', 1, { city: 'Bern' }, 2000, { origin: 'legacy' });
    const { plan: p } = plan([domain, legacy], { guard: seeded() });
    expect(rowsOf(p).map((r) => [r!.set, r!.inputs, r!.guard])).toEqual([[{ email: 'domain@example.com' }, [0], [guardOf(domain, 'email', true)]]]);
    expect(observedOf(p)).toEqual([guardOf(legacy, 'city', false)]);
    expect([p.observedFields, p.stale, p.reports]).toEqual([1, 0, []]);
  });

  it('new-owned: a domain event is written, a legacy event reported', () => {
    const domain = event('UserChanged', 1, { email: 'domain@example.com' }, 2000);
    const legacy = event('UserChanged', 1, { firstName: 'Legacy' }, 2000, { origin: 'legacy' });
    const { plan: p, guard } = plan([domain, legacy], { states: { user: 'new-owned' }, guard: seeded() });
    expect(outcome(p)).toEqual({
      ...NOTHING,
      rows: [
        {
          key: ['1'],
          delete: false,
          insertable: true,
          set: { email: 'domain@example.com' },
          known: { email: 'domain@example.com' },
          inputs: [0],
          guard: [guardOf(domain, 'email', true)],
        },
      ],
      dropped: { 'reported:new-owned': 1 },
      reports: [{ type: 'UserChanged', reason: 'lifecycle:new-owned', fields: ['firstName'] }],
    });
    expect(guard.has(guardKey('user', '1', 'firstName'))).toBe(false);
  });

  it('decommissioned: every event is dropped, nothing is reported and the guard is untouched', () => {
    const events = [
      event('UserChanged', 1, { email: 'domain@example.com' }, 2000),
      event('UserChanged', 1, { email: 'legacy@example.com' }, 2000, { origin: 'legacy' }),
      event('UserDeleted', 1, {}, 3000),
    ];
    const { plan: p, guard } = plan(events, { states: { user: 'decommissioned' }, guard: seeded() });
    expect(outcome(p)).toEqual({ ...NOTHING, dropped: { 'lifecycle:decommissioned': 3 } });
    expect(guard).toEqual(seeded());
  });

  it('the state is per change type: user legacy-owned and address dual in one row', () => {
    const user = event('UserChanged', 1, { email: 'domain@example.com' }, 2000);
    const address = event('AddressChanged', 1, { city: 'Bern' }, 2000);
    const { plan: p } = plan([user, address], { states: { user: 'legacy-owned', address: 'dual' } });
    expect(rowsOf(p).map((r) => [r!.set, r!.inputs])).toEqual([[{ city: 'Bern' }, [1]]]);
    expect(p.reports.map((r) => r.event)).toEqual([user]);
  });
});

describe('planBatch: the restore rule (a legacy value newer than what Banyan wrote)', () => {
  it('a legacy event newer than a guard entry Banyan wrote is written back, without inserting a missing row', () => {
    const guard = guardWith(entry('user', '1', 'email', 1000, 'domain', 'seed', true));
    const e = event('UserChanged', 1, { email: 'legacy@example.com' }, 2000, { origin: 'legacy' });
    const { plan: p } = plan([e], { guard });
    expect(outcome(p)).toEqual({
      ...NOTHING,
      rows: [
        {
          key: ['1'],
          delete: false,
          insertable: false,
          set: { email: 'legacy@example.com' },
          known: { email: 'legacy@example.com' },
          inputs: [0],
          guard: [guardOf(e, 'email', true)],
        },
      ],
    });
  });

  it('a legacy event newer than an observed guard entry is only observed', () => {
    const guard = guardWith(entry('user', '1', 'email', 1000, 'legacy', 'seed', false));
    const e = event('UserChanged', 1, { email: 'legacy@example.com' }, 2000, { origin: 'legacy' });
    const { plan: p } = plan([e], { guard });
    expect(rowsOf(p)).toEqual([]);
    expect(observedOf(p)).toEqual([guardOf(e, 'email', false)]);
    expect(p.observedFields).toBe(1);
  });

  it('decides per field: the field Banyan wrote is written back, the observed one observed', () => {
    const guard = guardWith(entry('user', '1', 'email', 1000, 'domain', 'seed-email', true), entry('user', '1', 'firstName', 1000, 'legacy', 'seed-name', false));
    const e = event('UserChanged', 1, { email: 'legacy@example.com', firstName: 'Ada' }, 2000, { origin: 'legacy' });
    const { plan: p } = plan([e], { guard });
    expect(rowsOf(p).map((r) => [r!.set, r!.insertable, r!.guard])).toEqual([[{ email: 'legacy@example.com' }, false, [guardOf(e, 'email', true)]]]);
    expect(observedOf(p)).toEqual([guardOf(e, 'firstName', false)]);
    expect([p.observedFields, p.stale]).toEqual([1, 0]);
  });

  it('a legacy event older than Banyan’s write is stale', () => {
    const guard = guardWith(entry('user', '1', 'email', 3000, 'domain', 'seed', true));
    const { plan: p } = plan([event('UserChanged', 1, { email: 'legacy@example.com' }, 2000, { origin: 'legacy' })], { guard });
    expect(outcome(p)).toEqual({ ...NOTHING, dropped: { stale: 1 }, stale: 1 });
  });
});

describe('planBatch: deletes', () => {
  it('UserDeleted newer than every guarded user field deletes the row and guards every user field as written', () => {
    const guard = guardWith(entry('user', '1', 'email', 1000, 'domain', 'seed-email', true), entry('user', '1', 'firstName', 1500, 'legacy', 'seed-name', false));
    const e = event('UserDeleted', 1, {}, 2000);
    const { plan: p, guard: after } = plan([e], { guard });
    expect(outcome(p)).toEqual({
      ...NOTHING,
      rows: [
        {
          key: ['1'],
          delete: true,
          insertable: false,
          set: {},
          known: {},
          inputs: [0],
          guard: byField([guardOf(e, 'firstName', true), guardOf(e, 'lastName', true), guardOf(e, 'email', true)]),
        },
      ],
    });
    expect(byField([...after.values()])).toEqual(byField([guardOf(e, 'firstName', true), guardOf(e, 'lastName', true), guardOf(e, 'email', true)]));
  });

  it('UserDeleted older than one guarded user field is stale: nothing deleted, the guard kept', () => {
    const seeded = () => guardWith(entry('user', '1', 'email', 1000, 'domain', 'seed-email', true), entry('user', '1', 'lastName', 3000, 'legacy', 'seed-name', false));
    const { plan: p, guard } = plan([event('UserDeleted', 1, {}, 2000)], { guard: seeded() });
    expect(outcome(p)).toEqual({ ...NOTHING, dropped: { stale: 1 }, stale: 3 });
    expect(guard).toEqual(seeded());
  });

  it('a replayed UserDeleted is stale', () => {
    const e = event('UserDeleted', 1, {}, 2000);
    const first = plan([e]);
    expect(rowsOf(first.plan).map((r) => r!.delete)).toEqual([true]);
    expect(outcome(plan([e], { guard: first.guard }).plan)).toEqual({ ...NOTHING, dropped: { stale: 1 }, stale: 3 });
  });

  it('a delete clears what the batch set before it; what is set after it is written after the delete', () => {
    const before = event('UserChanged', 1, { email: 'before@example.com' }, 1000);
    const del = event('UserDeleted', 1, {}, 2000);
    const after = event('UserChanged', 1, { firstName: 'Again' }, 3000);
    const { plan: p } = plan([before, del, after]);
    expect(rowsOf(p)).toEqual([
      {
        key: ['1'],
        delete: true,
        insertable: true,
        set: { first_name: 'Again' },
        known: { first_name: 'Again' },
        inputs: [0, 1, 2],
        guard: byField([guardOf(del, 'lastName', true), guardOf(del, 'email', true), guardOf(after, 'firstName', true)]),
      },
    ]);
  });

  it('AddressDeleted nulls the address columns (the row stays), each field newer than its guard', () => {
    const guard = guardWith(entry('address', '1', 'city', 3000, 'legacy', 'seed', false));
    const e = event('AddressDeleted', 1, {}, 2000);
    const { plan: p } = plan([e], { guard });
    expect(outcome(p)).toEqual({
      ...NOTHING,
      rows: [
        {
          key: ['1'],
          delete: false,
          insertable: false,
          set: { street: null, postal_code: null, state: null, country: null },
          known: {},
          inputs: [0],
          guard: byField(['street', 'postalCode', 'state', 'country'].map((f) => guardOf(e, f, true))),
        },
      ],
      stale: 1,
    });
  });

  it('AddressDeleted with every address field unguarded nulls all five columns', () => {
    const { plan: p } = plan([event('AddressDeleted', 1, {}, 2000)]);
    expect(rowsOf(p).map((r) => r!.set)).toEqual([Object.fromEntries(ADDRESS_COLUMNS.map((c) => [c, null]))]);
  });

  it('with softDelete, a UserDeleted older than one user field the row holds is stale whole, as a row delete is', () => {
    const guard = guardWith(entry('user', '1', 'lastName', 3000, 'domain', 'seed', true));
    const { plan: p } = plan([event('UserDeleted', 1, {}, 2000)], { guard, softDelete: { column: 'deleted', value: 'Y' } });
    expect(rowsOf(p)).toEqual([]);
    expect(p.dropped).toEqual({ stale: 1 });
    expect(p.stale).toBe(3);
  });

  it('with softDelete, UserDeleted sets the soft-delete column instead of deleting the row', () => {
    const e = event('UserDeleted', 1, {}, 2000);
    const { plan: p } = plan([e], { softDelete: { column: 'deleted', value: 'Y' } });
    expect(outcome(p)).toEqual({
      ...NOTHING,
      rows: [
        {
          key: ['1'],
          delete: false,
          insertable: false,
          set: { deleted: 'Y' },
          known: {},
          inputs: [0],
          guard: byField([guardOf(e, 'firstName', true), guardOf(e, 'lastName', true), guardOf(e, 'email', true)]),
        },
      ],
    });
  });

  it('a legacy UserDeleted over observed values is observed: guard rows for every user field, no row', () => {
    const guard = guardWith(entry('user', '1', 'email', 1000, 'legacy', 'seed', false));
    const e = event('UserDeleted', 1, {}, 2000, { origin: 'legacy' });
    const { plan: p } = plan([e], { guard });
    expect(rowsOf(p)).toEqual([]);
    expect(observedOf(p)).toEqual(byField(['firstName', 'lastName', 'email'].map((f) => guardOf(e, f, false))));
    expect([p.observedFields, p.stale, p.refused]).toEqual([3, 0, []]);
  });

  // A legacy delete is observed only, even newer than a value Banyan wrote: the legacy application
  // may have inserted the row again since (delete + insert, REPLACE INTO), and Banyan must never
  // delete a live legacy row on the strength of an old delete.
  it('a legacy UserDeleted newer than values Banyan wrote is observed, not written back', () => {
    const guard = guardWith(entry('user', '1', 'email', 1000, 'domain', 'seed', true));
    const e = event('UserDeleted', 1, {}, 2000, { origin: 'legacy' });
    const { plan: p } = plan([e], { guard });
    expect(rowsOf(p)).toEqual([]);
    expect(p.observedFields).toBe(3);
  });

  it('a legacy delete and re-insert of a row Banyan wrote (or a REPLACE INTO) leave the live row alone', () => {
    const guard = guardWith(entry('user', '1', 'email', 100, 'domain', 'seed', true));
    const del = event('UserDeleted', 1, {}, 200, { origin: 'legacy' });
    const insert = event('UserChanged', 1, { firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example.com' }, 201, { origin: 'legacy' });
    const { plan: p } = plan([del, insert], { guard });
    expect(rowsOf(p).filter((r) => r!.delete || Object.keys(r!.set).length > 0)).toEqual([]);
  });

  // "The result does not depend on arrival order". Legacy delete first: the older domain change is
  // stale, nothing is written. Domain change first: the newer legacy delete takes its planned write
  // back, so the older value is never written into a row the legacy side deleted.
  it('a legacy UserDeleted newer than a domain change in the same batch: no write of the older value, in either order', () => {
    const change = event('UserChanged', 1, { email: 'domain@example.com' }, 1000);
    const del = event('UserDeleted', 1, {}, 2000, { origin: 'legacy' });
    for (const events of [[del, change], [change, del]]) {
      const { plan: p } = plan(events);
      const rows = rowsOf(p);
      expect(rows.filter((r) => r!.insertable || 'email' in r!.set)).toEqual([]);
    }
  });
});

describe('planBatch: refusals', () => {
  it('a domain event changing a field whose conversion cannot be reversed (trim) is refused whole: NOT_WRITABLE', () => {
    const guard = guardWith(entry('user', '1', 'email', 1000, 'legacy', 'seed', false));
    const e = event('UserChanged', 1, { firstName: 'Ada', email: 'ada@example.com' }, 2000);
    const { plan: p, guard: after } = plan([e], { mapping: CONVERTED_USERS, guard });
    expect(outcome(p)).toEqual({
      ...NOTHING,
      refused: [{ index: 0, code: 'NOT_WRITABLE', reason: 'UserChanged.firstName cannot be written to first_name: its conversions (trim) cannot be reversed' }],
    });
    expect(after).toEqual(guardWith(entry('user', '1', 'email', 1000, 'legacy', 'seed', false)));
  });

  it('a field on a column the database cannot take a domain value into faithfully (sql_variant) is refused as NOT_WRITABLE, the others written', () => {
    const columns = [...USER_COLUMNS, ...ADDRESS_COLUMNS, 'id'].map((name) => ({ name, sqlType: name === 'email' ? 'sql_variant' : 'nvarchar(50)', type: { kind: 'string' as const }, nullable: true }));
    const table = { schema: 'dbo', name: 'users', primaryKey: ['id'], columns };
    const mapping = withUnwritableColumns(USERS, table, mssqlWrites.unwritable);
    const refused = plan([event('UserChanged', 1, { email: 'int:42' }, 2000)], { mapping }).plan.refused;
    expect(refused).toEqual([
      { index: 0, code: 'NOT_WRITABLE', reason: 'UserChanged.email cannot be written to email: the column is sql_variant, whose text form (type:value) would be stored back as an nvarchar' },
    ]);
    expect(rowsOf(plan([event('UserChanged', 1, { firstName: 'Ada' }, 2000, { changed: ['firstName'] })], { mapping }).plan).map((r) => r!.set)).toEqual([{ first_name: 'Ada' }]);
    // Other dialects' columns are all writable: the mapping is the same object.
    expect(withUnwritableColumns(USERS, table, undefined)).toBe(USERS);
  });

  it('the unreversible field only known, not changed: the event is written without it', () => {
    const e = event('UserChanged', 1, { firstName: 'Ada', email: 'ada@example.com' }, 2000, { changed: ['email'] });
    const { plan: p } = plan([e], { mapping: CONVERTED_USERS });
    expect(rowsOf(p).map((r) => [r!.set, r!.known])).toEqual([[{ email: 'ada@example.com' }, { email: 'ada@example.com' }]]);
    expect(p.refused).toEqual([]);
  });

  it('an enum map is written back through its inverse: active → A', () => {
    const e = event('AddressChanged', 1, { state: 'active', city: 'Bern' }, 2000);
    const { plan: p } = plan([e], { mapping: CONVERTED_USERS });
    expect(rowsOf(p).map((r) => [r!.set, r!.known])).toEqual([[{ state: 'A', city: 'Bern' }, { state: 'A', city: 'Bern' }]]);
  });

  it('a value the enum map has no key for is refused: UNMAPPED_VALUE; the rest of the batch goes on', () => {
    const ok = event('UserChanged', 1, { email: 'ada@example.com' }, 2000);
    const bad = event('AddressChanged', 1, { state: 'closed', city: 'Bern' }, 2000);
    const { plan: p, guard } = plan([ok, bad], { mapping: CONVERTED_USERS });
    expect(p.refused).toEqual([{ index: 1, code: 'UNMAPPED_VALUE', reason: expect.stringMatching(/^AddressChanged\.state → state: .*closed.*not in the enum map/) }]);
    expect(rowsOf(p).map((r) => [r!.set, r!.inputs])).toEqual([[{ email: 'ada@example.com' }, [0]]]);
    expect([...guard.keys()]).toEqual([guardKey('user', '1', 'email')]);
  });

  it('an event whose key lacks the id is refused: NO_KEY', () => {
    const e = event('UserChanged', 1, { email: 'ada@example.com' }, 2000, { key: {} });
    const { plan: p, guard } = plan([e]);
    expect(outcome(p)).toEqual({ ...NOTHING, refused: [{ index: 0, code: 'NO_KEY', reason: 'UserChanged 1: no value for key column id' }] });
    expect(guard.size).toBe(0);
  });

  it('an event type the mapping does not map is dropped: unmapped', () => {
    const e = event('OrderChanged', 7, { status: 'paid' }, 2000);
    const { plan: p, guard } = plan([e, e]);
    expect(outcome(p)).toEqual({ ...NOTHING, dropped: { unmapped: 2 } });
    expect(guard.size).toBe(0);
  });
});

describe('planBatch: counting', () => {
  it('an observed legacy event is counted in observedFields, not as stale and not as dropped', () => {
    const e = event('UserChanged', 1, { email: 'legacy@example.com', firstName: 'Ada' }, 2000, { origin: 'legacy' });
    const { plan: p } = plan([e]);
    expect(outcome(p)).toEqual({ ...NOTHING, observed: [guardOf(e, 'email', false), guardOf(e, 'firstName', false)], observedFields: 2 });
  });

  it('a legacy event partly observed and partly stale counts each field once, and is not dropped', () => {
    const guard = guardWith(entry('user', '1', 'email', 3000, 'legacy', 'seed', false));
    const e = event('UserChanged', 1, { email: 'legacy@example.com', firstName: 'Ada' }, 2000, { origin: 'legacy' });
    const { plan: p } = plan([e], { guard });
    expect(outcome(p)).toEqual({ ...NOTHING, observed: [guardOf(e, 'firstName', false)], observedFields: 1, stale: 1 });
  });

  it('the user columns of the mapping are those banyan.yaml names', () => {
    expect(USERS.blocks[0]!.fields.map((f) => f.column)).toEqual(USER_COLUMNS);
    expect(USERS.blocks[1]!.fields.map((f) => f.column)).toEqual(ADDRESS_COLUMNS);
  });
});
