import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The house rules of CONVENTIONS.md that an import graph can check: contracts in src/core depend
 * on nothing, the layers below only ever import downwards, stages never import each other, and
 * the product never imports the development tools or the tests.
 */
const SRC = resolve('src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.ts$/.test(entry.name) && !/\.spec\.ts$/.test(entry.name) ? [path] : [];
  });
}

/** Every relative import of a file, as a path from the repository root. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'([^']+)'/g), ...text.matchAll(/import\('([^']+)'\)/g)].map((m) => m[1]!);
  return specifiers.filter((s) => s.startsWith('.')).map((s) => relative(process.cwd(), resolve(dirname(file), s)));
}

/** `src/import/changelog/source.ts` → `import`; outside src → the top folder (`tools`, `test`). */
function folderOf(path: string): string {
  const parts = path.split('/');
  return parts[0] === 'src' ? (parts.length > 2 ? parts[1]! : parts[1]!.replace(/\.ts$/, '')) : parts[0]!;
}

const edges = new Map<string, Set<string>>();
for (const file of sourceFiles(SRC)) {
  const from = folderOf(relative(process.cwd(), file));
  for (const target of importsOf(file)) {
    const to = folderOf(target);
    if (to === from) continue;
    if (!edges.has(from)) edges.set(from, new Set());
    edges.get(from)!.add(to);
  }
}
const importsFrom = (folder: string) => [...(edges.get(folder) ?? [])].sort();

/** What each layer may import; a folder not listed may import nothing of the others. */
const ALLOWED: Record<string, string[]> = {
  // migrations/ (outside src, the knex migrations of the changelog tables) sits with the stages.
  core: [],
  dialects: ['core'],
  clients: ['core', 'dialects'],
  runtime: ['clients', 'core', 'dialects'],
  domain: ['core'],
  import: ['clients', 'core', 'dialects', 'migrations', 'runtime'],
  transforms: ['core', 'domain', 'runtime'],
  export: ['clients', 'core', 'dialects', 'domain', 'runtime'],
  config: ['core', 'domain', 'export', 'import', 'runtime', 'transforms'],
  cli: ['clients', 'config', 'core', 'dialects', 'domain', 'export', 'import', 'migrations', 'runtime', 'transforms'],
};

describe('the import graph of src/', () => {
  it('reads at least the folders it checks (the scanner works)', () => {
    expect(importsFrom('import')).toContain('runtime');
    expect(importsFrom('cli')).toContain('config');
  });

  it.each(Object.keys(ALLOWED))('%s imports only the layers below it', (folder) => {
    expect(importsFrom(folder).filter((to) => !ALLOWED[folder]!.includes(to))).toEqual([]);
  });

  it('has no folder outside the known layers, and no cycle between folders', () => {
    expect([...edges.keys()].filter((folder) => !(folder in ALLOWED))).toEqual([]);
    const cycles: string[] = [];
    for (const [from, targets] of edges) for (const to of targets) if (edges.get(to)?.has(from)) cycles.push(`${from} <-> ${to}`);
    expect(cycles).toEqual([]);
  });

  it('never imports the development tools (the Salesforce emulator) or the tests', () => {
    const outside = [...edges.values()].flatMap((targets) => [...targets]).filter((to) => ['tools', 'test', 'bench', 'scripts'].includes(to));
    expect(outside).toEqual([]);
  });

  it('keeps src/core free of every dependency beyond the standard library', () => {
    const packages = sourceFiles(join(SRC, 'core')).flatMap((file) =>
      [...readFileSync(file, 'utf8').matchAll(/from\s+'([^'.][^']*)'/g)].map((m) => m[1]!).filter((s) => !s.startsWith('node:')),
    );
    expect(packages).toEqual([]);
  });
});
