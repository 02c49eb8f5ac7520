import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { buildCatalog, builtinCatalog, eventsSectionSchema } from '../../domain';
import { transformSchema, type TransformConfig } from '../config';
import { compileConversion } from './conversions';
import { reverseMapping } from './reverse';

/**
 * The reverse of a declarative transform (the legacy sink's RowMapping), from transforms written
 * as a user writes them and parsed by the real transform schema.
 */

const transform = (yaml: string): TransformConfig => transformSchema.parse(parseYaml(yaml));

const LEGACY_USERS = transform(`
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
`);

/** A catalog with numeric fields and a composite key, declared as a config's `events:` section. */
const LEDGER_CATALOG = buildCatalog(
  eventsSectionSchema.parse(
    parseYaml(`
- name: EntryChanged
  entity: entry
  key: [book, entryNo]
  fields:
    amount: decimal(18,4)
    cents: long
    units: decimal(18,6)
    status: string
- name: EntryDeleted
  entity: entry
  kind: deleted
  key: [book, entryNo]
- name: EntryVoided
  entity: voided_entry
  key: [book, entryNo]
  kind: deleted
`),
  ),
);

const LEDGER = transform(`
name: legacy-ledger
from: legacy.fin.entries
format: legacy-changelog
events:
  - event: EntryChanged
    key: { book: book_code, entryNo: entry_no }
    fields:
      amount: { column: amount_cents, convert: [{ divide: 100 }] }
      cents: { column: amount_units, convert: [{ multiply: 100 }] }
      units: { column: micro_units, convert: [{ divide: 1000 }, { divide: "1000" }] }
      status: { column: status, convert: [{ map: { A: active, I: inactive } }] }
`);

/** The import's conversions of a block's field (the forward direction), from the same config. */
function forward(t: TransformConfig, field: string): (value: unknown) => unknown {
  const chain = t.events![0]!.fields[field]!.convert.map(compileConversion);
  return (value) => chain.reduce((v, c) => c.apply(v), value);
}

const fieldOf = (t: TransformConfig, field: string, catalog = LEDGER_CATALOG) => reverseMapping(t, catalog).blocks[0]!.fields.find((f) => f.field === field)!;

function thrown(f: () => unknown): Error & { code?: string } {
  try {
    f();
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected an error');
}

describe('reverseMapping: structure', () => {
  it('legacy-users: one block per event, its key, its fields and columns, the deleted events from the catalog', () => {
    const mapping = reverseMapping(LEGACY_USERS, builtinCatalog());
    expect({ ...mapping, blocks: mapping.blocks.map((b) => ({ ...b, fields: b.fields.map(({ field, column, notWritable }) => ({ field, column, notWritable })) })) }).toEqual({
      name: 'legacy-users',
      from: 'legacy.demo.users',
      rowEntity: 'user',
      blocks: [
        {
          event: 'UserChanged',
          deletedEvent: 'UserDeleted',
          entity: 'user',
          key: [{ field: 'id', column: 'id' }],
          fields: [
            { field: 'firstName', column: 'first_name', notWritable: undefined },
            { field: 'lastName', column: 'last_name', notWritable: undefined },
            { field: 'email', column: 'email', notWritable: undefined },
          ],
        },
        {
          event: 'AddressChanged',
          deletedEvent: 'AddressDeleted',
          entity: 'address',
          key: [{ field: 'id', column: 'id' }],
          fields: [
            { field: 'street', column: 'street', notWritable: undefined },
            { field: 'city', column: 'city', notWritable: undefined },
            { field: 'postalCode', column: 'postal_code', notWritable: undefined },
            { field: 'state', column: 'state', notWritable: undefined },
            { field: 'country', column: 'country', notWritable: undefined },
          ],
        },
      ],
    });
  });

  it('a field with no conversion is written back as it is, null included', () => {
    const email = reverseMapping(LEGACY_USERS, builtinCatalog()).blocks[0]!.fields.find((f) => f.field === 'email')!;
    expect(email.notWritable).toBeUndefined();
    expect(email.toColumn('ada@example.com')).toBe('ada@example.com');
    expect(email.toColumn(null)).toBeNull();
  });

  it('rowEntity is the first block’s entity', () => {
    const addressFirst = transform(`
name: address-first
from: legacy.demo.users
format: legacy-changelog
events:
  - event: AddressChanged
    key: id
    fields: { city: city }
  - event: UserChanged
    key: id
    fields: { email: email }
`);
    const mapping = reverseMapping(addressFirst, builtinCatalog());
    expect(mapping.rowEntity).toBe('address');
    expect(mapping.blocks.map((b) => b.entity)).toEqual(['address', 'user']);
  });

  it('a composite key keeps its order and columns', () => {
    expect(reverseMapping(LEDGER, LEDGER_CATALOG).blocks[0]!.key).toEqual([
      { field: 'book', column: 'book_code' },
      { field: 'entryNo', column: 'entry_no' },
    ]);
  });

  it('deletedEvent: the catalog’s deleted event of the entity; onDelete names another; onDelete: none leaves none', () => {
    const withDelete = (onDelete: string | undefined) =>
      transform(`
name: t
from: legacy.fin.entries
format: legacy-changelog
events:
  - event: EntryChanged
    key: { book: book_code, entryNo: entry_no }
    fields: { status: status }
${onDelete ? `    onDelete: ${onDelete}\n` : ''}`);
    expect(reverseMapping(withDelete(undefined), LEDGER_CATALOG).blocks[0]).toMatchObject({ event: 'EntryChanged', deletedEvent: 'EntryDeleted' });
    expect(reverseMapping(withDelete('EntryVoided'), LEDGER_CATALOG).blocks[0]).toMatchObject({ deletedEvent: 'EntryVoided' });
    const none = reverseMapping(withDelete('none'), LEDGER_CATALOG).blocks[0]!;
    expect(none.event).toBe('EntryChanged');
    expect('deletedEvent' in none).toBe(false);
  });
});

describe('reverseMapping: conversions written back', () => {
  it('the inverse of divide: 100 multiplies back exactly (decimal text, no float)', () => {
    const amount = fieldOf(LEDGER, 'amount');
    expect(amount.notWritable).toBeUndefined();
    expect(amount.toColumn('123.45')).toBe('12345');
    expect(amount.toColumn('-0.01')).toBe('-1');
    expect(amount.toColumn('92233720368547758.07')).toBe('9223372036854775807');
    expect(amount.toColumn(null)).toBeNull();
    for (const cents of ['12345', '-1', '0', '9223372036854775807']) expect(amount.toColumn(forward(LEDGER, 'amount')(cents))).toBe(cents);
  });

  it('the inverse of multiply: 100 divides back exactly', () => {
    const cents = fieldOf(LEDGER, 'cents');
    expect(cents.notWritable).toBeUndefined();
    expect(cents.toColumn('12345')).toBe('123.45');
    expect(cents.toColumn(12345)).toBe('123.45');
    expect(cents.toColumn(1n)).toBe('0.01');
    expect(cents.toColumn('-900719925474099312')).toBe('-9007199254740993.12');
    for (const units of ['123.45', '0.01', '-7.25', '9007199254740993.12']) expect(cents.toColumn(forward(LEDGER, 'cents')(units))).toBe(units);
  });

  it('a chain of unit changes is undone in reverse order', () => {
    const units = fieldOf(LEDGER, 'units');
    expect(units.toColumn('1.234567')).toBe('1234567');
    expect(units.toColumn(forward(LEDGER, 'units')('987654321'))).toBe('987654321');
  });

  it('a value a unit change cannot take is refused with a code', () => {
    const error = thrown(() => fieldOf(LEDGER, 'amount').toColumn('twelve'));
    expect(error.code).toBe('TYPE_MISMATCH');
    expect(error.message).toContain('"twelve"');
  });

  // reverse.ts: a unit change is written back "through the inverse of its conversions". A legacy
  // integer column read with multiply: 100 ('12' → '1200') must come back as '12', not '12.00',
  // which PostgreSQL refuses for an integer column (invalid input syntax for type integer).
  it('multiply: 100 on an integer column: the inverse gives back the integer text', () => {
    const cents = fieldOf(LEDGER, 'cents');
    expect(cents.toColumn(forward(LEDGER, 'cents')('12'))).toBe('12');
  });

  it('an injective enum map is written back through its inverse; an unmapped value is refused UNMAPPED_VALUE', () => {
    const status = fieldOf(LEDGER, 'status');
    expect(status.notWritable).toBeUndefined();
    expect(status.toColumn('active')).toBe('A');
    expect(status.toColumn('inactive')).toBe('I');
    expect(status.toColumn(null)).toBeNull();
    const error = thrown(() => status.toColumn('closed'));
    expect(error.code).toBe('UNMAPPED_VALUE');
    expect(error.message).toBe('"closed" is not in the enum map (reversed) ("active", "inactive")');
  });

  it('an enum map with unmapped: pass passes an unmapped value back unchanged', () => {
    const t = transform(`
name: t
from: legacy.fin.entries
format: legacy-changelog
events:
  - event: EntryChanged
    key: { book: book_code, entryNo: entry_no }
    fields:
      status: { column: status, convert: [{ map: { A: active }, unmapped: pass }] }
`);
    const status = fieldOf(t, 'status');
    expect(status.toColumn('active')).toBe('A');
    expect(status.toColumn('closed')).toBe('closed');
  });

  it.each([
    ['trim', '[trim]', '(trim)'],
    ['lower', '[lower]', '(lower)'],
    ['upper after a map', '[{ map: { A: active } }, upper]', '(map, upper)'],
    ['a map where two keys share a value', '[{ map: { A: active, Y: active } }]', '(map)'],
  ])('%s cannot be written back: notWritable says why, toColumn throws', (_name, convert, names) => {
    const t = transform(`
name: t
from: legacy.fin.entries
format: legacy-changelog
events:
  - event: EntryChanged
    key: { book: book_code, entryNo: entry_no }
    fields:
      status: { column: status, convert: ${convert} }
      amount: { column: amount_cents, convert: [{ divide: 100 }] }
`);
    const status = fieldOf(t, 'status');
    expect(status.notWritable).toBe(`its conversions ${names} cannot be reversed`);
    expect(thrown(() => status.toColumn('active')).message).toBe('status cannot be written back');
    // The block's other fields are unaffected.
    expect(fieldOf(t, 'amount').notWritable).toBeUndefined();
  });
});

describe('reverseMapping: errors', () => {
  it('a code mapping cannot be reversed', () => {
    const code = transform(`
name: salesforce-contacts
from: salesforce.Contact
format: salesforce-cdc
mapping: salesforce-contact
options: { idField: Banyan_Id__c }
`);
    expect(() => reverseMapping(code, builtinCatalog())).toThrow(
      'transform "salesforce-contacts" is a code mapping (salesforce-contact): only a declarative mapping can be reversed',
    );
  });

  it('a declarative salesforce-cdc transform names no legacy table', () => {
    const cdc = transform(`
name: contacts
from: salesforce.Contact
format: salesforce-cdc
events:
  - event: UserChanged
    key: { id: Banyan_Id__c }
    fields: { email: Email }
`);
    expect(() => reverseMapping(cdc, builtinCatalog())).toThrow('transform "contacts" reads salesforce-cdc, not a legacy changelog: it names no legacy table');
  });
});
