import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core';
import { catalogOf } from '../transforms/module';
import { parseConfig } from './index';
import { legacySinkTargets } from './sinks';

/**
 * Where each legacy sink writes, resolved across the config's sections, from YAML text parsed as
 * `banyan run` parses it (so a problem is named with its line).
 */

const HEAD = `kafka:
  brokers: 127.0.0.1:19092
  topics:
    domainPrefix: bridge7
schemaRegistry:
  url: http://127.0.0.1:18081/apis/ccompat/v7
databases:
  legacy:
    dialect: postgres
    database: app
    user: app
  archive:
    dialect: mariadb
    database: archive
    user: root
`;

const SOURCES = `sources:
  - name: orders
    type: changelog
    database: archive
    table: orders
  - name: users
    type: changelog
    database: legacy
    table: public.users
    topic: legacy.app.users
  - name: people
    type: changelog
    database: archive
    table: people
`;

const LEGACY_USERS = `  - name: legacy-users
    from: legacy.app.users
    format: legacy-changelog
    events:
      - event: UserChanged
        key: id
        fields:
          firstName: first_name
          email: email
      - event: AddressChanged
        key: id
        fields:
          city: city
`;

/** Reads the default topic of a source with no `topic:` (legacy.<database>.<table>). */
const LEGACY_PEOPLE = `  - name: legacy-people
    from: legacy.archive.people
    format: legacy-changelog
    events:
      - event: UserChanged
        key: { id: person_id }
        fields:
          email: mail
        onDelete: none
`;

const SALESFORCE_CODE = `  - name: salesforce-contacts
    from: salesforce.Contact
    format: salesforce-cdc
    mapping: salesforce-contact
    options:
      idField: Banyan_Id__c
`;

const UNSOURCED = `  - name: orphan
    from: legacy.nowhere.users
    format: legacy-changelog
    events:
      - event: UserChanged
        key: id
        fields:
          email: email
`;

function yaml(transforms: string[], sinks: string): string {
  return `${HEAD}${SOURCES}transforms:\n${transforms.join('')}sinks:\n${sinks}`;
}

function targets(text: string) {
  const config = parseConfig(text, 'banyan.yaml', {});
  return legacySinkTargets(config, catalogOf(config));
}

function configError(text: string): ConfigError {
  try {
    targets(text);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

/** The 1-based line of the only line of `text` that contains `needle`. */
function lineOf(text: string, needle: string): number {
  const lines = text.split('\n');
  const found = lines.flatMap((l, i) => (l.includes(needle) ? [i + 1] : []));
  if (found.length !== 1) throw new Error(`"${needle}" is on ${found.length} lines of the config`);
  return found[0]!;
}

describe('legacySinkTargets', () => {
  it('takes the database and table from the changelog source that feeds the transform’s topic', () => {
    const text = yaml(
      [LEGACY_USERS, LEGACY_PEOPLE],
      `  - name: users-back
    type: legacy
    mapping: legacy-users
  - name: people-back
    type: legacy
    mapping: legacy-people
`,
    );
    const found = targets(text);
    expect([...found.keys()]).toEqual(['users-back', 'people-back']);
    const users = found.get('users-back')!;
    expect([users.database, users.table]).toEqual(['legacy', 'public.users']);
    expect(users.mapping).toMatchObject({ name: 'legacy-users', from: 'legacy.app.users', rowEntity: 'user' });
    expect(users.mapping.blocks.map((b) => [b.event, b.deletedEvent])).toEqual([
      ['UserChanged', 'UserDeleted'],
      ['AddressChanged', 'AddressDeleted'],
    ]);
    // The default topic of a source without `topic:` is legacy.<database>.<table>.
    const people = found.get('people-back')!;
    expect([people.database, people.table]).toEqual(['archive', 'people']);
    expect(people.mapping.blocks[0]!.key).toEqual([{ field: 'id', column: 'person_id' }]);
  });

  it('the topics are the domain topics of the mapping’s events, under the config’s domainPrefix', () => {
    const found = targets(
      yaml(
        [LEGACY_USERS, LEGACY_PEOPLE],
        `  - name: users-back
    type: legacy
    mapping: legacy-users
  - name: people-back
    type: legacy
    mapping: legacy-people
`,
      ),
    );
    expect(found.get('users-back')!.topics).toEqual(['bridge7.user', 'bridge7.address']);
    // UserChanged alone, with no deleted event: one topic, once.
    expect(found.get('people-back')!.topics).toEqual(['bridge7.user']);
  });

  it('without a domainPrefix, the topics are domain.<entity>', () => {
    const text = yaml([LEGACY_USERS], '  - name: users-back\n    type: legacy\n    mapping: legacy-users\n').replace('  topics:\n    domainPrefix: bridge7\n', '');
    expect(targets(text).get('users-back')!.topics).toEqual(['domain.user', 'domain.address']);
  });

  it('an explicit database and table win over the source’s; either alone overrides its half', () => {
    const found = targets(
      yaml(
        [LEGACY_USERS],
        `  - name: both
    type: legacy
    mapping: legacy-users
    database: archive
    table: users_copy
  - name: table-only
    type: legacy
    mapping: legacy-users
    table: public.users_v2
  - name: database-only
    type: legacy
    mapping: legacy-users
    database: archive
`,
      ),
    );
    expect([...found].map(([name, t]) => [name, t.database, t.table])).toEqual([
      ['both', 'archive', 'users_copy'],
      ['table-only', 'legacy', 'public.users_v2'],
      ['database-only', 'archive', 'public.users'],
    ]);
  });

  it('a transform with no source is written where the sink says', () => {
    const found = targets(
      yaml(
        [UNSOURCED],
        `  - name: orphan-back
    type: legacy
    mapping: orphan
    database: legacy
    table: public.orphans
`,
      ),
    );
    expect(found.get('orphan-back')).toMatchObject({ database: 'legacy', table: 'public.orphans', topics: ['bridge7.user'] });
  });

  it('a sink naming an unknown transform is a ConfigError naming sinks[i].mapping and its line', () => {
    const text = yaml(
      [LEGACY_USERS],
      `  - name: users-back
    type: legacy
    mapping: legacy-users
  - name: lost
    type: legacy
    mapping: legacy-customers
`,
    );
    const error = configError(text);
    expect(error.issues).toEqual([
      { path: `sinks[1].mapping (line ${lineOf(text, 'mapping: legacy-customers')})`, message: 'no transform named "legacy-customers" (configured: legacy-users)' },
    ]);
    expect(error.message).toMatch(/^invalid configuration in banyan\.yaml \(1 problem\):/);
  });

  it('a sink naming a code-mapping transform is a ConfigError: only a declarative mapping can be reversed', () => {
    const text = yaml(
      [LEGACY_USERS, SALESFORCE_CODE],
      `  - name: contacts-back
    type: legacy
    mapping: salesforce-contacts
`,
    );
    expect(configError(text).issues).toEqual([
      {
        path: `sinks[0].mapping (line ${lineOf(text, 'mapping: salesforce-contacts')})`,
        message: 'transform "salesforce-contacts" is a code mapping (salesforce-contact): only a declarative mapping can be reversed',
      },
    ]);
  });

  it('a transform no changelog source feeds, and a sink with no database or table, is a ConfigError naming sinks[i]', () => {
    const text = yaml(
      [UNSOURCED],
      `  - name: orphan-back
    type: legacy
    mapping: orphan
`,
    );
    expect(configError(text).issues).toEqual([
      {
        path: `sinks[0] (line ${lineOf(text, 'name: orphan-back')})`,
        message: "no changelog source writes legacy.nowhere.users: give the sink's database and table",
      },
    ]);
  });

  it('a table without a database for an unsourced transform is still unresolved', () => {
    const text = yaml([UNSOURCED], '  - name: orphan-back\n    type: legacy\n    mapping: orphan\n    table: orphans\n');
    expect(configError(text).issues.map((i) => i.path)).toEqual([`sinks[0] (line ${lineOf(text, 'name: orphan-back')})`]);
  });

  it('a database the config does not have is a ConfigError naming sinks[i].database', () => {
    const text = yaml([LEGACY_USERS], '  - name: users-back\n    type: legacy\n    mapping: legacy-users\n    database: warehouse\n');
    expect(configError(text).issues).toEqual([{ path: `sinks[0].database (line ${lineOf(text, 'database: warehouse')})`, message: 'no database named "warehouse"' }]);
  });

  it('names every unresolved sink in one error; the good ones do not hide them', () => {
    const text = yaml(
      [LEGACY_USERS, SALESFORCE_CODE, UNSOURCED],
      `  - name: users-back
    type: legacy
    mapping: legacy-users
  - name: lost
    type: legacy
    mapping: legacy-customers
  - name: contacts-back
    type: legacy
    mapping: salesforce-contacts
  - name: orphan-back
    type: legacy
    mapping: orphan
`,
    );
    const error = configError(text);
    expect(error.issues.map((i) => i.path)).toEqual([
      `sinks[1].mapping (line ${lineOf(text, 'mapping: legacy-customers')})`,
      `sinks[2].mapping (line ${lineOf(text, 'mapping: salesforce-contacts')})`,
      `sinks[3] (line ${lineOf(text, 'name: orphan-back')})`,
    ]);
    expect(error.message).toContain('(3 problems)');
  });

  it('no sinks: no targets', () => {
    expect(targets(yaml([LEGACY_USERS], '  []\n')).size).toBe(0);
  });
});
