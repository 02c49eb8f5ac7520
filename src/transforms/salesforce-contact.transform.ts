import { z } from 'zod';
import type { CodeMapping } from './mappings/code';
import { USER_ADDRESS_EVENTS, userAddressMapping } from './mappings/user-address';

/**
 * A Salesforce Contact change → UserChanged (Name.FirstName, Name.LastName, Email) and
 * AddressChanged (the compound MailingAddress), honouring changedFields as CDC sends them: an
 * update names only what changed, compound components by dotted name. The entity id is the
 * Contact's external id (`Banyan_Id__c`), which the CDC channel enriches every event with; a change
 * without it (a Contact not linked to a legacy user) is dead-lettered with NO_ENTITY_ID, never
 * guessed. A delete → UserDeleted then AddressDeleted, as for a legacy user.
 */
const USER: Record<string, string> = { firstName: 'Name.FirstName', lastName: 'Name.LastName', email: 'Email' };
const ADDRESS: Record<string, string> = {
  street: 'MailingAddress.Street',
  city: 'MailingAddress.City',
  postalCode: 'MailingAddress.PostalCode',
  state: 'MailingAddress.State',
  country: 'MailingAddress.Country',
};

const options = z.strictObject({
  idField: z.string().min(1).default('Banyan_Id__c').describe('the Contact field holding the user’s id (an external id, enriched into every event)'),
});

/** The REST name of a field CDC names by its dotted compound name (Name.FirstName → FirstName, MailingAddress.City → MailingCity). */
function restName(dotted: string): string {
  const [compound, component] = dotted.split('.') as [string, string | undefined];
  if (component === undefined) return compound;
  return compound.endsWith('Address') ? `${compound.slice(0, -'Address'.length)}${component}` : component;
}

/** Strings as they are; Salesforce takes the domain's text fields as they come. */
const same = (value: unknown): unknown => value;

export const salesforceContact: CodeMapping<z.infer<typeof options>> = {
  name: 'salesforce-contact',
  format: 'salesforce-cdc',
  doc: 'Salesforce Contact → UserChanged / AddressChanged / UserDeleted + AddressDeleted, keyed by Banyan_Id__c',
  events: USER_ADDRESS_EVENTS,
  options,
  reads: (o) => [o.idField, ...Object.values(USER), ...Object.values(ADDRESS)],
  build({ transform, catalog, options: o }) {
    return userAddressMapping({ format: 'salesforce-cdc', user: USER, address: ADDRESS }, transform.name, catalog, o.idField);
  },
  // The Salesforce sink writes UserChanged and AddressChanged into the one Contact whose external
  // id is the user's id; the compound MailingAddress through its component fields, as the REST API
  // takes it (the compound itself is read-only). Deleted events are not written (no deletedEvent):
  // a Contact is not deleted, nor its address emptied, by a legacy delete (docs/export-salesforce.md).
  writes({ transform, options: o }) {
    const block = (event: string, entity: string, fields: Record<string, string>) => ({
      event,
      entity,
      key: [{ field: 'id', column: o.idField }],
      fields: Object.entries(fields).map(([field, dotted]) => ({ field, column: restName(dotted), toColumn: same })),
    });
    return {
      name: transform.name,
      from: transform.from,
      rowEntity: 'user',
      blocks: [block('UserChanged', 'user', USER), block('AddressChanged', 'address', ADDRESS)],
    };
  },
};
