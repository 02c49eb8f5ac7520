import type { EventDefinition } from './event';

/**
 * The events Banyan ships. A configuration may declare more (its `events:` section); the built-in
 * ones are the reference example of the design: a legacy `users` row (user and address columns in
 * one table) and a Salesforce Contact both become these.
 */
export const BUILTIN_EVENTS: EventDefinition[] = [
  {
    name: 'UserChanged',
    entity: 'user',
    topic: 'domain.user',
    kind: 'changed',
    doc: 'A user was created or changed: the fields named in changedFields changed, those in knownFields carry their current value.',
    fields: {
      firstName: { type: 'string' },
      lastName: { type: 'string' },
      email: { type: 'string' },
    },
  },
  {
    name: 'UserDeleted',
    entity: 'user',
    topic: 'domain.user',
    kind: 'deleted',
    doc: 'The user was deleted at its source. Its address goes with it (an AddressDeleted for the same id).',
    fields: {},
  },
  {
    name: 'AddressChanged',
    entity: 'address',
    topic: 'domain.address',
    kind: 'changed',
    doc: "A user's postal address was set or changed; its entity id is the user's.",
    fields: {
      street: { type: 'string' },
      city: { type: 'string' },
      postalCode: { type: 'string' },
      state: { type: 'string' },
      country: { type: 'string' },
    },
  },
  {
    name: 'AddressDeleted',
    entity: 'address',
    topic: 'domain.address',
    kind: 'deleted',
    doc: 'The address is gone: its user was deleted.',
    fields: {},
  },
];
