import { describe, expect, it } from 'vitest';
import { fixture, parseMappingConfig, USERS } from '../../../test/fixtures/mappings/inputs';
import { ConfigError } from '../../core';
import { BUILTIN_EVENTS } from '../../domain/catalog';
import { tableSchemas } from '../../import/changelog/avro';
import { buildMapping, legacyColumnsFromSchema, validateTransforms, type InputColumn } from './index';

const USERS_COLUMNS = { 'legacy.app.users': legacyColumnsFromSchema(tableSchemas(USERS, 'app').value) };
const CONTACT_FIELDS: InputColumn[] = ['Banyan_Id__c', 'Name.FirstName', 'Name.LastName', 'Email', 'Phone', ...['Street', 'City', 'PostalCode', 'State', 'Country'].map((c) => `MailingAddress.${c}`)].map(
  (name) => ({ name, type: { type: 'string' } }),
);

const HEAD = `transforms:
  - name: legacy-users
    from: legacy.app.users
    format: legacy-changelog
    events:
      - event: UserChanged
        key: id
        fields:
`;

/** The problems validateTransforms reports for a config, as `path (line N): message` lines. */
function problems(text: string, columns: Record<string, InputColumn[]> | undefined = USERS_COLUMNS): string[] {
  const { config, catalog } = parseMappingConfig(text);
  try {
    validateTransforms(config, catalog, columns);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

/** The problems the config loader itself reports (the zod schema). */
function loadProblems(text: string): string[] {
  try {
    parseMappingConfig(text);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

describe('validateTransforms: a bad mapping fails at start, naming the transform, the field and the line', () => {
  it('accepts the shipped fixtures against the real columns', () => {
    expect(problems(fixture('users.yaml'), { ...USERS_COLUMNS, 'salesforce.Contact': CONTACT_FIELDS })).toEqual([]);
  });

  const cases: Array<{ name: string; yaml: string; expected: string[]; columns?: Record<string, InputColumn[]> }> = [
    {
      name: 'an unknown column',
      yaml: `${HEAD}          firstName: first_nme\n`,
      expected: [
        'transforms[0].events[0].fields.firstName.column (line 9): transform "legacy-users": unknown column "first_nme" in legacy.app.users (it has: id, first_name, last_name, email, street, city, postal_code, state, country, credit_limit, updated_at)',
      ],
    },
    {
      name: 'an unknown column in the object form, pointing at its column line',
      yaml: `${HEAD}          firstName:\n            column: given_name\n`,
      expected: [expect.stringMatching(/^transforms\[0\]\.events\[0\]\.fields\.firstName\.column \(line 10\): transform "legacy-users": unknown column "given_name"/) as unknown as string],
    },
    {
      name: 'an unknown key column',
      yaml: HEAD.replace('key: id', 'key: { id: user_id }') + `          email: email\n`,
      expected: [expect.stringMatching(/^transforms\[0\]\.events\[0\]\.key \(line 7\): transform "legacy-users": unknown column "user_id"/) as unknown as string],
    },
    {
      name: 'an unknown event field',
      yaml: `${HEAD}          givenName: first_name\n`,
      expected: ['transforms[0].events[0].fields.givenName (line 9): transform "legacy-users": unknown field "givenName" of event UserChanged (its fields: firstName, lastName, email)'],
    },
    {
      name: 'an unknown event',
      yaml: HEAD.replace('UserChanged', 'UserUpdated') + `          firstName: first_name\n`,
      expected: [expect.stringMatching(/^transforms\[0\]\.events\[0\]\.event \(line 6\): transform "legacy-users": unknown event "UserUpdated" \(known: UserChanged, UserDeleted/) as unknown as string],
    },
    {
      name: 'a type mismatch: a decimal column into a string field',
      yaml: `${HEAD}          firstName: credit_limit\n`,
      expected: ['transforms[0].events[0].fields.firstName (line 9): transform "legacy-users": type mismatch: column "credit_limit" is decimal(12,2), the event field is string'],
    },
    {
      name: 'a conversion the column cannot take',
      yaml: `${HEAD}          firstName: { column: updated_at, convert: [trim] }\n`,
      expected: ['transforms[0].events[0].fields.firstName.convert[0] (line 9): transform "legacy-users": column "updated_at": trim takes text, the column is timestamp'],
    },
    {
      name: 'a filter on a field the block does not map',
      yaml: `${HEAD}          firstName: first_name\n        filter:\n          - field: email\n            equals: x\n`,
      expected: ['transforms[0].events[0].filter[0].field (line 11): transform "legacy-users": filter on "email", which this block does not map (it maps: firstName)'],
    },
    {
      name: 'a key that does not name the entity’s key fields',
      yaml: HEAD.replace('key: id', 'key: { userId: id }') + `          firstName: first_name\n`,
      expected: ['transforms[0].events[0].key (line 7): transform "legacy-users": entity "user" is keyed by (id); this block gives (userId) (write key: { id: id })'],
    },
    {
      name: 'changeTypes that do not list an event’s entity',
      yaml: HEAD.replace('    events:', '    changeTypes: [address]\n    events:') + `          firstName: first_name\n`,
      expected: ['transforms[0].changeTypes (line 5): transform "legacy-users": its events are about user, which changeTypes does not list (address)'],
    },
    {
      name: 'an unknown code mapping',
      yaml: `transforms:\n  - name: contacts\n    from: salesforce.Contact\n    format: salesforce-cdc\n    mapping: salesforce-contacts\n`,
      expected: ['transforms[0].mapping (line 5): transform "contacts": unknown code mapping "salesforce-contacts" (registered: legacy-users, salesforce-contact)'],
    },
    {
      name: 'a code mapping for the other format, and an unknown option',
      yaml: `transforms:\n  - name: contacts\n    from: salesforce.Contact\n    format: legacy-changelog\n    mapping: salesforce-contact\n    options:\n      idFeld: X\n`,
      expected: [
        'transforms[0].format (line 4): transform "contacts": code mapping "salesforce-contact" reads salesforce-cdc, not legacy-changelog',
        expect.stringMatching(/^transforms\[0\]\.options \(line 7\): transform "contacts": option of salesforce-contact: .*idFeld/) as unknown as string,
      ],
    },
    {
      name: 'a code mapping reading a field the object does not have',
      yaml: `transforms:\n  - name: contacts\n    from: salesforce.Contact\n    format: salesforce-cdc\n    mapping: salesforce-contact\n    options: { idField: Legacy_Id__c }\n`,
      columns: { 'salesforce.Contact': CONTACT_FIELDS },
      expected: [expect.stringMatching(/^transforms\[0\]\.mapping \(line 5\): transform "contacts": unknown field "Legacy_Id__c" in salesforce.Contact/) as unknown as string],
    },
  ];

  it.each(cases)('$name', ({ yaml, expected, columns }) => {
    expect(problems(yaml, columns)).toEqual(expected);
  });

  it('reports every problem at once, and skips column checks for an input whose columns are not known', () => {
    const yaml = `${HEAD}          firstName: no_such_column\n          nickname: first_name\n`;
    expect(problems(yaml)).toHaveLength(2);
    expect(problems(yaml, {})).toEqual([expect.stringContaining('unknown field "nickname" of event UserChanged')]);
  });

  it('names the file in the error', () => {
    const { config, catalog } = parseMappingConfig(`${HEAD}          firstName: nope\n`, 'banyan.yaml');
    expect(() => validateTransforms(config, catalog, USERS_COLUMNS)).toThrow(/^invalid configuration in banyan\.yaml \(1 problem\):\n {2}- transforms\[0\]\.events\[0\]\.fields\.firstName\.column \(line 9\): transform "legacy-users": unknown column "nope"/);
  });
});

describe('the transforms: schema, through the real config loader', () => {
  const cases: Array<{ name: string; yaml: string; expected: RegExp }> = [
    { name: 'an unknown conversion', yaml: `${HEAD}          firstName: { column: first_name, convert: [titlecase] }\n`, expected: /^transforms\[0\]\.events\[0\]\.fields\.firstName\.convert\[0\] \(line 9\): expected .*one of trim\|lower\|upper.*, got "titlecase"/ },
    { name: 'a unit change that is no power of ten', yaml: `${HEAD}          firstName: { column: first_name, convert: [{ multiply: 3 }] }\n`, expected: /\(line 9\): expected a power of ten/ },
    { name: 'an unknown option of a block', yaml: `${HEAD}          firstName: first_name\n        onDelet: none\n`, expected: /^transforms\[0\]\.events\[0\] \(line 6\): unknown field "onDelet"/ },
    { name: 'neither mapping nor events', yaml: `transforms:\n  - name: t\n    from: x\n    format: salesforce-cdc\n`, expected: /^transforms\[0\] \(line 2\): give either `mapping`/ },
    { name: 'an unknown format', yaml: `transforms:\n  - name: t\n    from: x\n    format: debezium\n    mapping: legacy-users\n`, expected: /^transforms\[0\]\.format \(line 4\): expected one of legacy-changelog\|salesforce-cdc, got "debezium"/ },
    { name: 'a filter with two operators', yaml: `${HEAD}          firstName: first_name\n        filter:\n          - { field: firstName, equals: a, in: [b] }\n`, expected: /^transforms\[0\]\.events\[0\]\.filter\[0\] \(line 11\): expected exactly one of .* got equals and in/ },
    {
      name: 'a duplicate transform name',
      yaml: `transforms:\n  - { name: t, from: x, format: salesforce-cdc, mapping: salesforce-contact }\n  - { name: t, from: y, format: salesforce-cdc, mapping: salesforce-contact }\n`,
      expected: /^transforms\[1\]\.name \(line 3\): duplicate transform name "t"/,
    },
  ];
  it.each(cases)('$name', ({ yaml, expected }) => {
    const found = loadProblems(yaml);
    expect(found.length, found.join('\n')).toBeGreaterThan(0);
    expect(found.some((p) => expected.test(p)), found.join('\n')).toBe(true);
  });
});

describe('buildMapping', () => {
  it('refuses a transform the catalog cannot serve, without lines (it has no file)', () => {
    const { config } = parseMappingConfig(`${HEAD}          firstName: first_name\n`);
    expect(() => buildMapping(config.transforms[0]!, BUILTIN_EVENTS.filter((e) => e.name !== 'UserChanged'))).toThrow(
      /invalid configuration in transform "legacy-users" \(1 problem\):\n {2}- events\.0\.event: unknown event "UserChanged"/,
    );
  });
});
