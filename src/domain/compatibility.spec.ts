import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinCatalog } from './catalog';
import { backwardProblem, baselineFile, baselineVersions, publishedSchemas } from './compatibility';

/**
 * The published schemas of the built-in events are kept in src/domain/schemas/, one file per
 * subject and version. A change that would break a consumer is refused here, before it is ever
 * deployed (the registry would refuse it too, at start, with HTTP 409): the current schemas must
 * read every published version.
 */
const dir = 'src/domain/schemas';
const files = readdirSync(dir);
const published = (subject: string, version: number) => JSON.parse(readFileSync(join(dir, baselineFile(subject, version)), 'utf8')) as object;
const current = publishedSchemas(builtinCatalog());

describe('the published domain schemas', () => {
  it.each(current.map((c) => [c.subject, c.schema] as const))('%s reads every published version (BACKWARD)', (subject, schema) => {
    const versions = baselineVersions(subject, files);
    expect(versions.length, `no published version of ${subject}: run \`npm run asyncapi\``).toBeGreaterThan(0);
    for (const version of versions) expect(backwardProblem(schema, published(subject, version)), `${subject} v${version}`).toBeUndefined();
    // The latest published version is the current schema: a compatible change is recorded by `npm run asyncapi`.
    expect(schema, `${subject} changed since v${versions.at(-1)}: run \`npm run asyncapi\` to record it`).toEqual(published(subject, versions.at(-1)!));
  });

  it('has no file that is not a version of a subject the catalog publishes', () => {
    const known = new Set(current.flatMap(({ subject }) => baselineVersions(subject, files).map((v) => baselineFile(subject, v))));
    expect(files.filter((f) => !known.has(f))).toEqual([]);
  });

  describe('refuses, by the same check, a change that would break consumers', () => {
    const v1 = published('domain.user-value', 1) as { fields: Array<{ name: string; type: any }> };
    const variant = (change: (data: Array<{ name: string; fields: any[] }>, root: { fields: any[] }) => void) => {
      const copy = structuredClone(v1);
      change(copy.fields.find((f) => f.name === 'data')!.type, copy);
      return copy;
    };
    it.each([
      ['a data field’s type changed', variant((data) => void (data[0]!.fields.find((f: any) => f.name === 'email').type = ['null', 'int']))],
      ['an event type (union branch) removed', variant((data) => void data.splice(1, 1))],
      ['a field added without a default', variant((data) => void data[0]!.fields.push({ name: 'phone', type: 'string' }))],
      ['a required envelope field added', variant((_, root) => void root.fields.push({ name: 'tenant', type: 'string' }))],
      ['an event type renamed', variant((data) => void (data[0]!.name = 'UserUpdated'))],
    ])('%s', (_, breaking) => {
      expect(backwardProblem(breaking, v1)).toMatch(/cannot read|no matching field/);
    });
    it.each([
      ['a new optional field', variant((data) => void data[0]!.fields.push({ name: 'phone', type: ['null', 'string'], default: null }))],
      ['a new event type', variant((data) => void data.push({ type: 'record', name: 'UserMerged', fields: [] } as any))],
      ['a data field removed (old events carry it; new readers skip it)', variant((data) => void data[0]!.fields.splice(0, 1))],
    ])('but accepts %s', (_, compatible) => {
      expect(backwardProblem(compatible, v1)).toBeUndefined();
    });
  });
});
