import type { DomainEvent } from './event';

/**
 * The built-in events as TypeScript types, for domain services: a discriminated union by `type`
 * per topic. Every data field may be null: a null field not named in knownFields is unknown, not
 * cleared (see docs/domain.md). Type aliases, not interfaces, so they are Records. catalog.spec.ts checks these match BUILTIN_EVENTS.
 */
export type UserChangedData = {
  firstName: string | null;
  lastName: string | null;
  email: string | null;
};

export type AddressChangedData = {
  street: string | null;
  city: string | null;
  postalCode: string | null;
  state: string | null;
  country: string | null;
};

/** A deleted-kind event carries no data. */
export type NoData = Record<string, never>;

export type UserChanged = DomainEvent<UserChangedData> & { type: 'UserChanged'; entity: 'user' };
export type UserDeleted = DomainEvent<NoData> & { type: 'UserDeleted'; entity: 'user' };
export type AddressChanged = DomainEvent<AddressChangedData> & { type: 'AddressChanged'; entity: 'address' };
export type AddressDeleted = DomainEvent<NoData> & { type: 'AddressDeleted'; entity: 'address' };

/** What `domain.user` carries. */
export type UserEvent = UserChanged | UserDeleted;
/** What `domain.address` carries. */
export type AddressEvent = AddressChanged | AddressDeleted;

/** The event type a handler of each built-in topic gets; other topics give the untyped DomainEvent. */
export interface BuiltinTopicEvents {
  'domain.user': UserEvent;
  'domain.address': AddressEvent;
}

export type EventOfTopic<T extends string> = T extends keyof BuiltinTopicEvents ? BuiltinTopicEvents[T] : DomainEvent;
