import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

/** The services the README's "With Docker" section lists, as `- \`name\`` lines. */
function servicesNamedInReadme(): string[] {
  const readme = readFileSync('README.md', 'utf8');
  const section = /## With Docker\n([\s\S]*?)(\n## |$)/.exec(readme)?.[1] ?? '';
  return [...section.matchAll(/^- `([a-z-]+)`/gm)].map((m) => m[1]!);
}

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as {
    services: Record<string, { image?: string; build?: unknown; depends_on?: Record<string, unknown> }>;
  };

  it('has every service the README names, and the README names every service', () => {
    const named = servicesNamedInReadme();
    expect(named).toEqual(expect.arrayContaining(['kafka', 'schema-registry', 'sqlserver', 'salesforce-emulator', 'banyan']));
    expect(Object.keys(compose.services).sort()).toEqual([...named].sort());
  });

  it('gives every service an image or a build, and depends only on services it defines', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.image ?? service.build, `${name} has neither image nor build`).toBeTruthy();
      for (const dependency of Object.keys(service.depends_on ?? {})) {
        expect(compose.services, `${name} depends on ${dependency}`).toHaveProperty(dependency);
      }
    }
    expect(compose.services.sqlserver?.image).toMatch(/mssql\/server:2022/);
  });

  it('builds Banyan and the emulator as separate images; the Banyan image copies no development tool', () => {
    expect(compose.services.banyan?.build).toEqual({ context: '.', target: 'banyan' });
    expect(compose.services['salesforce-emulator']?.build).toEqual({ context: '.', target: 'salesforce-emulator' });
    const stages = readFileSync('Dockerfile', 'utf8').split(/^FROM /m).slice(1);
    const banyan = stages.find((stage) => /^\S+ AS banyan\b/.test(stage));
    // The last stage is what a plain `docker build .` gives: it must be Banyan's.
    expect(stages.at(-1)).toBe(banyan);
    const copied = [...banyan!.matchAll(/^COPY (.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(copied).toEqual(expect.arrayContaining(['src', 'bin', 'migrations']));
    expect(copied.filter((path) => /^(\.|tools|test|bench|scripts)\b/.test(path))).toEqual([]);
  });
});
