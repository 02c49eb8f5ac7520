import type { InputFormat } from './views';
import { eventFrom } from './code';
import { changedDraft, deletedDraft, runMapping, type EventDraft, type FieldPart, type MappingFunction } from './events';
import type { EventDefinition } from '../../domain/event';

/**
 * The shape both built-in code mappings share: one input → UserChanged when a user field changed,
 * AddressChanged when an address field changed (each only if something of it changed), and a
 * delete → UserDeleted then AddressDeleted (the address goes with its user). They differ only in
 * the input's format, the names of its fields and the field that holds the user's id.
 */
export interface UserAddressShape {
  format: InputFormat;
  /** Event field → input column or field, for UserChanged and for AddressChanged. */
  user: Record<string, string>;
  address: Record<string, string>;
}

export const USER_ADDRESS_EVENTS = ['UserChanged', 'AddressChanged', 'UserDeleted', 'AddressDeleted'];

export function userAddressMapping(
  shape: UserAddressShape,
  transformName: string,
  catalog: Map<string, EventDefinition>,
  idColumn: string,
): MappingFunction {
  const [userChanged, addressChanged, userDeleted, addressDeleted] = USER_ADDRESS_EVENTS.map((e) => eventFrom(catalog, e)) as [
    EventDefinition,
    EventDefinition,
    EventDefinition,
    EventDefinition,
  ];
  // Both inputs key the same entities by the same key field, so their events meet on one user.
  const key = [{ name: 'id', column: idColumn }];
  const parts = (fields: Record<string, string>): FieldPart[] => Object.entries(fields).map(([field, column]) => ({ field, column }));
  const user = parts(shape.user);
  const address = parts(shape.address);
  return (input) =>
    runMapping(transformName, shape.format, input, (view) => {
      if (view.op === 'delete') return { drafts: [deletedDraft(view, userDeleted, key), deletedDraft(view, addressDeleted, key)] };
      const drafts = [changedDraft(view, userChanged, key, user), changedDraft(view, addressChanged, key, address)];
      return { drafts: drafts.filter((d): d is EventDraft => d !== undefined), dropped: 'unchanged' };
    });
}
