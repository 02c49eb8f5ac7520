import { z } from 'zod';
import type { CodeMapping } from './mappings/code';
import { USER_ADDRESS_EVENTS, userAddressMapping } from './mappings/user-address';

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

export const legacyUsers: CodeMapping<z.infer<typeof options>> = {
  name: 'legacy-users',
  format: 'legacy-changelog',
  doc: 'legacy users table → UserChanged / AddressChanged / UserDeleted + AddressDeleted',
  events: USER_ADDRESS_EVENTS,
  options,
  reads: (o) => [o.idColumn, ...Object.values(USER), ...Object.values(ADDRESS)],
  build({ transform, catalog, options: o }) {
    return userAddressMapping({ format: 'legacy-changelog', user: USER, address: ADDRESS }, transform.name, catalog, o.idColumn);
  },
};
