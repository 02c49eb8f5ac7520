import { describe, expect, it } from 'vitest';
import type { TransformInput } from '../core';
import { builtinCatalog } from '../domain/catalog';
import { correlationId, eventId } from '../domain/records';
import type { DomainEvent } from '../domain/event';
import type { MappingFunction } from './mappings';
import { servedTransform } from './module';

const catalog = builtinCatalog();
const input: TransformInput = { topic: 'legacy.app.users', partition: 2, offset: '41', key: { id: 7 }, value: {}, headers: {}, timestamp: 0 };

function event(type: 'UserChanged' | 'AddressChanged' | 'UserDeleted', origin: DomainEvent['origin'] = 'legacy'): DomainEvent {
  const entity = type === 'AddressChanged' ? 'address' : 'user';
  const data: Record<string, unknown> =
    type === 'UserChanged' ? { firstName: 'Ada', lastName: 'King', email: null } : type === 'AddressChanged' ? { street: null, city: 'Paris', postalCode: null, state: null, country: null } : {};
  return {
    eventId: eventId({ topic: input.topic, partition: input.partition, offset: input.offset }, type, 0),
    type,
    entity,
    entityId: '7',
    entityKey: { id: '7' },
    sourceCommitTime: 1_700_000_000_000,
    origin,
    causation: { topic: input.topic, partition: input.partition, offset: input.offset },
    correlationId: correlationId({ topic: input.topic, partition: input.partition, offset: input.offset }),
    changedFields: Object.keys(data).slice(0, 1),
    knownFields: Object.keys(data),
    schemaVersion: 1,
    data,
  };
}

const mapping = (events: DomainEvent[]): MappingFunction => () => ({ events, deadLetters: [], dropped: {} });

describe('servedTransform', () => {
  it('writes the records of one input all or none, each naming the input', () => {
    const { records } = servedTransform(mapping([event('UserChanged'), event('AddressChanged')]), catalog, () => 'legacy-owned', () => undefined)(input);
    expect(records.map((r) => r.topic)).toEqual(['domain.user', 'domain.address']);
    expect(new Set(records.map((r) => r.group)).size).toBe(1);
    expect(records[0]!.group).toBeDefined();
    expect(records.every((r) => r.input?.topic === input.topic && r.input.partition === 2 && r.input.offset === '41')).toBe(true);
  });

  it('leaves a lone record ungrouped and a delete grouped with its tombstone', () => {
    expect(servedTransform(mapping([event('UserChanged')]), catalog, () => 'dual', () => undefined)(input).records[0]!.group).toBeUndefined();
    const { records } = servedTransform(mapping([event('UserDeleted')]), catalog, () => 'dual', () => undefined)(input);
    expect(records.map((r) => r.value === null)).toEqual([false, true]);
    expect(records[0]!.group).toBe(records[1]!.group);
  });

  it('obeys each change type’s state: new-owned reports legacy changes only, decommissioned turns nothing', () => {
    const reported: string[] = [];
    const report = (e: DomainEvent, reason: string) => void reported.push(`${e.type} ${reason}`);
    const states: Record<string, 'new-owned' | 'decommissioned' | 'legacy-owned'> = { user: 'new-owned', address: 'legacy-owned' };
    const legacy = servedTransform(mapping([event('UserChanged'), event('AddressChanged')]), catalog, (t) => states[t]!, report)(input);
    expect(legacy.records.map((r) => r.topic)).toEqual(['domain.address']);
    expect(legacy.dropped).toEqual({ 'lifecycle:new-owned': 1 });
    const salesforce = servedTransform(mapping([event('UserChanged', 'salesforce')]), catalog, (t) => states[t]!, report)(input);
    expect(salesforce.records.map((r) => r.topic)).toEqual(['domain.user']);
    states.address = 'decommissioned';
    const none = servedTransform(mapping([event('AddressChanged', 'salesforce')]), catalog, (t) => states[t]!, report)(input);
    expect(none).toMatchObject({ records: [], dropped: { 'lifecycle:decommissioned': 1 } });
    expect(reported).toEqual(['UserChanged lifecycle:new-owned', 'AddressChanged lifecycle:decommissioned']);
  });
});
