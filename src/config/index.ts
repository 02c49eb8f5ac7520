import { z } from 'zod';
import { eventsSectionSchema } from '../domain/config';
import { sinksSchema } from '../export/legacy/config';
import { sourceSchema } from '../import/config';
import { transformsCrossReferences, transformsSchema } from '../transforms/config';
import { runtimeSections } from '../runtime/config';
import { loadConfigFileWith, parseConfigWith, type ConfigSpec } from '../runtime/config/load';

/**
 * The whole configuration file: the runtime's sections (src/runtime/config) and each stage's own
 * (the sources, from src/import). This is the one place that knows them all; the runtime and the
 * stages each read only their part. Parsed once at start: a bad value names its path and line.
 */
export const configSchema = z.strictObject({
    ...runtimeSections,
    sources: z.array(sourceSchema).default([]),
    events: eventsSectionSchema,
    transforms: transformsSchema,
    sinks: sinksSchema,
  })
  // One name for Banyan's own writes everywhere, unless Salesforce's must differ.
  .transform((config) => ({
    ...config,
    salesforce: config.salesforce && {
      ...config.salesforce,
      callOptionsClient: config.salesforce.callOptionsClient ?? config.originTag,
    },
  }));

/**
 * Checks between sections (a source naming a database that is not configured…). Runs on the raw
 * input even when other fields are wrong, so one run reports every mistake.
 */
export function crossReferenceIssues(raw: unknown): Array<{ path: Array<string | number>; message: string }> {
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  const root = (raw ?? {}) as { databases?: unknown; sources?: unknown; salesforce?: unknown };
  const databases = root.databases && typeof root.databases === 'object' ? Object.keys(root.databases) : [];
  const sources = Array.isArray(root.sources) ? (root.sources as Array<Record<string, unknown>>) : [];
  const seen = new Set<unknown>();
  sources.forEach((source, i) => {
    if (!source || typeof source !== 'object') return;
    if (source.name !== undefined && seen.has(source.name)) {
      issues.push({ path: ['sources', i, 'name'], message: `duplicate source name "${String(source.name)}"` });
    }
    seen.add(source.name);
    if (source.type === 'changelog' && typeof source.database === 'string' && !databases.includes(source.database)) {
      issues.push({
        path: ['sources', i, 'database'],
        message: `no database named "${source.database}" (configured: ${databases.join(', ') || 'none'})`,
      });
    }
    if (source.type === 'salesforce-cdc' && !root.salesforce) {
      issues.push({ path: ['sources', i], message: 'a salesforce-cdc source needs the `salesforce` section' });
    }
  });
  issues.push(...transformsCrossReferences(raw));
  return issues;
}

export type BanyanConfig = z.infer<typeof configSchema>;

const SPEC: ConfigSpec<BanyanConfig> = { schema: configSchema, crossReferences: crossReferenceIssues };

/**
 * Parses YAML text into a validated config. `${VAR}` and `${VAR:-default}` are replaced from `env`
 * in every string; secret fields must be such a reference, never a literal.
 */
export function parseConfig(text: string, where: string, env: Record<string, string | undefined> = process.env): BanyanConfig {
  return parseConfigWith(SPEC, text, where, env);
}

/** Reads, interpolates and validates a YAML config file. Every problem is reported at once. */
export function loadConfigFile(file: string, env: Record<string, string | undefined> = process.env): BanyanConfig {
  return loadConfigFileWith(SPEC, file, env);
}

export { configErrorAt, configLocation } from '../runtime/config/load';
export { databaseSchema, type DatabaseConfig, type SalesforceConfig } from '../runtime/config';
export { changelogSourceSchema, type ChangelogSourceConfig } from '../import/changelog/config';
export type { SalesforceCdcSourceConfig } from '../import/salesforce-cdc/config';
