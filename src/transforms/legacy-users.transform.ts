import { z } from 'zod';
import type { CodeMapping } from './mappings/code';
import { eventFrom } from './mappings/code';
import { changedDraft, deletedDraft, runMapping, type EventDraft, type FieldPart } from './mappings/events';

/**
 * A legacy `users` row (user and address columns in one table) → UserChanged when user columns
 * changed, AddressChanged when address columns changed; a delete → UserDeleted then AddressDeleted
 * (the address goes with its user). The same as the declarative block in docs/mappings.md (the
 * spec checks both agree); kept in code as the reference example of a code mapping.
 */
const USER: Record<string, string> = { firstName: 'first_name', lastName: 'last_name', email: 'email' };
const ADDRESS: Record<string, string> = { street: 'street', city: 'city', postalCode: 'postal_code', state: 'state', country: 'country' };

const options = z.strictObject({
  idColumn: z.string().min(1).default('id').describe('the primary-key column, the user’s id'),
});

const parts = (fields: Record<string, string>): FieldPart[] => Object.entries(fields).map(([field, column]) => ({ field, column }));

export const legacyUsers: CodeMapping<z.infer<typeof options>> = {
  name: 'legacy-users',
  format: 'legacy-changelog',
  doc: 'legacy users table → UserChanged / AddressChanged / UserDeleted + AddressDeleted',
  events: ['UserChanged', 'AddressChanged', 'UserDeleted', 'AddressDeleted'],
  options,
  reads: (o) => [o.idColumn, ...Object.values(USER), ...Object.values(ADDRESS)],
  build({ transform, catalog, options: o }) {
    const [userChanged, addressChanged, userDeleted, addressDeleted] = this.events.map((e) => eventFrom(catalog, e)) as [
      ReturnType<typeof eventFrom>,
      ReturnType<typeof eventFrom>,
      ReturnType<typeof eventFrom>,
      ReturnType<typeof eventFrom>,
    ];
    const key = [{ name: 'id', column: o.idColumn }];
    const user = parts(USER);
    const address = parts(ADDRESS);
    return (input) =>
      runMapping(transform.name, 'legacy-changelog', input, (view) => {
        if (view.op === 'delete') return { drafts: [deletedDraft(view, userDeleted, key), deletedDraft(view, addressDeleted, key)] };
        const drafts = [changedDraft(view, userChanged, key, user), changedDraft(view, addressChanged, key, address)];
        return { drafts: drafts.filter((d): d is EventDraft => d !== undefined), dropped: 'unchanged' };
      });
  },
};
