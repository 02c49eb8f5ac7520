import { z } from 'zod';
import type { CodeMapping } from './mappings/code';
import { eventFrom } from './mappings/code';
import { changedDraft, deletedDraft, runMapping, type EventDraft, type FieldPart } from './mappings/events';

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

const parts = (fields: Record<string, string>): FieldPart[] => Object.entries(fields).map(([field, column]) => ({ field, column }));

export const salesforceContact: CodeMapping<z.infer<typeof options>> = {
  name: 'salesforce-contact',
  format: 'salesforce-cdc',
  doc: 'Salesforce Contact → UserChanged / AddressChanged / UserDeleted + AddressDeleted, keyed by Banyan_Id__c',
  events: ['UserChanged', 'AddressChanged', 'UserDeleted', 'AddressDeleted'],
  options,
  reads: (o) => [o.idField, ...Object.values(USER), ...Object.values(ADDRESS)],
  build({ transform, catalog, options: o }) {
    const [userChanged, addressChanged, userDeleted, addressDeleted] = this.events.map((e) => eventFrom(catalog, e)) as [
      ReturnType<typeof eventFrom>,
      ReturnType<typeof eventFrom>,
      ReturnType<typeof eventFrom>,
      ReturnType<typeof eventFrom>,
    ];
    // The same key name as the legacy users mapping: both feed the same entities.
    const key = [{ name: 'id', column: o.idField }];
    const user = parts(USER);
    const address = parts(ADDRESS);
    return (input) =>
      runMapping(transform.name, 'salesforce-cdc', input, (view) => {
        if (view.op === 'delete') return { drafts: [deletedDraft(view, userDeleted, key), deletedDraft(view, addressDeleted, key)] };
        const drafts = [changedDraft(view, userChanged, key, user), changedDraft(view, addressChanged, key, address)];
        return { drafts: drafts.filter((d): d is EventDraft => d !== undefined), dropped: 'unchanged' };
      });
  },
};
