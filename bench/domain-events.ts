import { randomUUID } from 'node:crypto';
import type { DomainEvent } from '../src/domain/event';

/**
 * What the export benchmarks publish: a domain service's UserChanged and AddressChanged events, a
 * realistic mix of which fields change, from a seeded generator so every run publishes the same.
 */

/** A small seeded generator (mulberry32), so every run publishes the same mix. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Shuffles `list` in place (Fisher–Yates) and returns it. */
export function shuffle<T>(list: T[], rng: () => number): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}

/** Picks one of `choices` by their weights. */
export function pick<T>(rng: () => number, choices: Array<[number, T]>): T {
  let r = rng() * choices.reduce((n, [w]) => n + w, 0);
  for (const [w, value] of choices) if ((r -= w) < 0) return value;
  return choices.at(-1)![1];
}

/** Which UserChanged fields a change changes, by weight. */
export const USER_CHANGES: Array<[number, string[]]> = [
  [45, ['email']],
  [20, ['firstName', 'lastName']],
  [15, ['lastName']],
  [10, ['firstName']],
  [10, ['firstName', 'lastName', 'email']],
];

/** Which AddressChanged fields a change changes, by weight. */
export const ADDRESS_CHANGES: Array<[number, string[]]> = [
  [35, ['street', 'city', 'postalCode']],
  [25, ['city']],
  [20, ['street']],
  [10, ['postalCode']],
  [10, ['street', 'city', 'postalCode', 'state', 'country']],
];

/** A changed field's new value: names, email and street new every event; city, postal code, state and country from small sets, so a rare write changes nothing (a no-op). */
export function value(field: string, id: number, i: number): string {
  switch (field) {
    case 'firstName':
      return `Fn${id}.${i}`;
    case 'lastName':
      return `Ln${id}.${i}`;
    case 'email':
      return `e${id}.${i}@example.com`;
    case 'street':
      return `${i % 999} Side St ${id}`;
    case 'city':
      return `Town ${i % 500}`;
    case 'postalCode':
      return String(1000 + (i % 9000));
    case 'state':
      return ['ZH', 'BE', 'GE', 'TI'][i % 4]!;
    default:
      return ['CH', 'DE', 'AT', 'FR'][i % 4]!;
  }
}

/** A domain service's event, as test/legacy-databases.ts's serviceEvent makes it: origin domain, every field of the type present. */
export function serviceEvent(type: 'UserChanged' | 'AddressChanged', id: number, data: Record<string, string>, at: number, i: number): DomainEvent {
  const all: Record<string, unknown> = type === 'UserChanged' ? { firstName: null, lastName: null, email: null } : { street: null, city: null, postalCode: null, state: null, country: null };
  return {
    eventId: randomUUID(),
    type,
    entity: type === 'UserChanged' ? 'user' : 'address',
    entityId: String(id),
    entityKey: { id: String(id) },
    sourceCommitTime: at,
    origin: 'domain',
    causation: { topic: 'service.users', partition: 0, offset: String(i) },
    correlationId: randomUUID(),
    changedFields: Object.keys(data),
    knownFields: Object.keys(data),
    schemaVersion: 1,
    data: { ...all, ...data },
  };
}
