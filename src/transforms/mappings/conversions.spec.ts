import { describe, expect, it } from 'vitest';
import { legacyInput, parseMappingConfig, salesforceInput, USERS } from '../../../test/fixtures/mappings/inputs';
import { compileConversion, inverseOf } from './conversions';
import { decimalText, parseDecimal, relativeChangeBelow, shift } from './decimal';
import { buildMapping } from './index';

describe('exact decimals', () => {
  it.each([
    ['1234.50', -2, '12.3450'],
    ['12345', -2, '123.45'],
    ['0.07', 2, '7'],
    ['-0.5', -3, '-0.0005'],
    ['9007199254740993', -2, '90071992547409.93'],
    ['1e-7', 0, '0.0000001'],
    ['1.5E3', 0, '1500'],
  ])('%s × 10^%i = %s', (text, n, expected) => {
    expect(decimalText(shift(parseDecimal(text)!, n))).toBe(expected);
  });

  it('compares a relative change exactly at the boundary', () => {
    const ratio = parseDecimal('0.0001')!;
    expect(relativeChangeBelow(parseDecimal('1000.00')!, parseDecimal('1000.0999')!, ratio)).toBe(true);
    expect(relativeChangeBelow(parseDecimal('1000.00')!, parseDecimal('1000.1')!, ratio)).toBe(false);
    expect(relativeChangeBelow(parseDecimal('-1000')!, parseDecimal('-999.95')!, ratio)).toBe(true);
    expect(relativeChangeBelow(parseDecimal('0')!, parseDecimal('0.000001')!, ratio)).toBe(false);
  });

  it('refuses what is no number', () => {
    expect([parseDecimal('abc'), parseDecimal(''), parseDecimal(Number.NaN), parseDecimal(Infinity), parseDecimal('.')]).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });
});

describe('conversions and their inverses (for the exporter)', () => {
  it('a unit change and an injective enum map invert exactly; trim and case changes do not invert', () => {
    // Compiled from the parsed config, where a unit change is its exponent: divide by 1000, then multiply by 10.
    const chain = [compileConversion({ divide: 3 }), compileConversion({ multiply: 1 })];
    expect(chain.reduce<unknown>((v, c) => c.apply(v), 12345n)).toBe('123.45');
    expect(inverseOf(chain)!('123.45')).toBe('12345');
    const map = compileConversion({ map: { A: 'active', I: 'inactive' }, unmapped: 'dead-letter' });
    expect([map.apply('A'), inverseOf([map])!('inactive')]).toEqual(['active', 'I']);
    expect(inverseOf([compileConversion({ map: { A: 'on', B: 'on' }, unmapped: 'pass' })])).toBeUndefined();
    expect(inverseOf([compileConversion('trim')])).toBeUndefined();
    expect(inverseOf([compileConversion('lower')])).toBeUndefined();
  });

  it('an enum map with unmapped: pass lets other values through unchanged, null stays null', () => {
    const map = compileConversion({ map: { '1': 'one' }, unmapped: 'pass' });
    expect([map.apply(1), map.apply('2'), map.apply(null)]).toEqual(['one', '2', null]);
  });
});

describe('filter conditions', () => {
  const { config, catalog } = parseMappingConfig(`
transforms:
  - name: uk-users
    from: legacy.app.users
    format: legacy-changelog
    events:
      - event: AddressChanged
        key: id
        fields: { city: city, country: { column: country, convert: [trim, upper] } }
        filter:
          - field: country
            in: [UK, IE]
  - name: uk-contacts
    from: salesforce.Contact
    format: salesforce-cdc
    events:
      - event: AddressChanged
        key: { id: Banyan_Id__c }
        fields: { city: MailingAddress.City, country: MailingAddress.Country }
        filter:
          - field: country
            equals: UK
            whenUnknown: pass
`);
  const legacy = buildMapping(config.transforms[0]!, catalog);
  const salesforce = buildMapping(config.transforms[1]!, catalog);
  const row = { id: 1n, city: 'London', country: ' uk ' };

  it('in: holds on the converted value; a row outside it is dropped and counted', () => {
    expect(legacy(legacyInput(USERS, { op: 'insert', after: row })).events.map((e) => e.data)).toEqual([{ street: null, city: 'London', postalCode: null, state: null, country: 'UK' }]);
    expect(legacy(legacyInput(USERS, { op: 'insert', after: { ...row, country: 'FR' } })).dropped).toEqual({ filtered: 1 });
    // Deletes are filtered on the last known values too.
    expect(legacy(legacyInput(USERS, { op: 'delete', before: { ...row, country: 'FR' } })).dropped).toEqual({ filtered: 1 });
    expect(legacy(legacyInput(USERS, { op: 'delete', before: row })).events.map((e) => e.type)).toEqual(['AddressDeleted']);
  });

  it('whenUnknown: a Salesforce update that does not carry the field passes when told to, and is judged when it does', () => {
    const cityOnly = salesforceInput({ op: 'update', fields: { Banyan_Id__c: '1', 'MailingAddress.City': 'Leeds' }, changedFields: ['MailingAddress.City'] });
    expect(salesforce(cityOnly).events.map((e) => e.changedFields)).toEqual([['city']]);
    const toFrance = salesforceInput({ op: 'update', fields: { Banyan_Id__c: '1', 'MailingAddress.Country': 'FR' }, changedFields: ['MailingAddress.Country'] });
    expect(salesforce(toFrance).dropped).toEqual({ filtered: 1 });
  });
});
