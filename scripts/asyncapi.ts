import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { asyncApiYaml } from '../src/domain/asyncapi';
import { builtinCatalog } from '../src/domain/catalog';
import { backwardProblem, baselineFile, baselineVersions, publishedSchemas } from '../src/domain/compatibility';

/**
 * `npm run asyncapi`: brings the published contract of the built-in events in step with the code.
 * - src/domain/schemas/: a schema that changed is kept as its subject's next version, but only if
 *   it reads every version before it (BACKWARD); otherwise nothing is written and this fails.
 * - docs/asyncapi.yaml: written anew from the catalog.
 * compatibility.spec.ts and asyncapi.spec.ts fail until this has been run after a change.
 */
const root = resolve(import.meta.dirname, '..');
const dir = join(root, 'src/domain/schemas');
const files = readdirSync(dir);
const catalog = builtinCatalog();
const toWrite: Array<[string, string]> = [];
const problems: string[] = [];
for (const { subject, schema } of publishedSchemas(catalog)) {
  const versions = baselineVersions(subject, files);
  const text = `${JSON.stringify(schema, null, 2)}\n`;
  const latest = versions.at(-1);
  if (latest !== undefined && readFileSync(join(dir, baselineFile(subject, latest)), 'utf8') === text) continue;
  for (const version of versions) {
    const problem = backwardProblem(schema, JSON.parse(readFileSync(join(dir, baselineFile(subject, version)), 'utf8')) as object);
    if (problem) problems.push(`${subject}: the new schema cannot read version ${version} (${problem})`);
  }
  toWrite.push([join(dir, baselineFile(subject, (latest ?? 0) + 1)), text]);
}
if (problems.length) {
  console.error(`refused: a change that would break consumers (see docs/domain.md, "Evolving a schema"):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
for (const [file, text] of toWrite) {
  writeFileSync(file, text);
  console.log(`recorded ${file.slice(root.length + 1)}`);
}
writeFileSync(join(root, 'docs/asyncapi.yaml'), asyncApiYaml(catalog));
console.log('wrote docs/asyncapi.yaml');
