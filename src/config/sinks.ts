import type { RowMapping } from '../core';
import type { LegacySinkConfig, LegacySinkTarget, SinkConfig } from '../export/legacy/config';
import type { SalesforceSinkConfig, SalesforceSinkTarget } from '../export/salesforce/config';
import type { EventCatalog } from '../domain/catalog';
import { changelogTopic } from '../import/changelog/config';
import { cdcTopic } from '../import/salesforce-cdc/config';
import { reverseMapping, salesforceWriteMapping } from '../transforms/mappings';
import { configErrorAt } from '../runtime/config/load';
import type { BanyanConfig } from './index';

export type { LegacySinkTarget, SalesforceSinkTarget };

/** The config's sinks of one type, each with its index in `sinks` (for error paths). */
export function sinksOfType<T extends SinkConfig['type']>(config: BanyanConfig, type: T): Array<{ sink: Extract<SinkConfig, { type: T }>; index: number }> {
  return config.sinks.flatMap((sink, index) => (sink.type === type ? [{ sink: sink as Extract<SinkConfig, { type: T }>, index }] : []));
}

export type { LegacySinkConfig, SalesforceSinkConfig };

/** The domain topics a mapping's events are on. */
function topicsOf(mapping: RowMapping, catalog: EventCatalog): string[] {
  return [...new Set(mapping.blocks.flatMap((b) => [b.event, b.deletedEvent].filter((e): e is string => !!e)).map((e) => catalog.definition(e)!.topic))];
}

/**
 * Each legacy sink's mapping (the reverse of its transform's) and table: the config's `database`
 * and `table`, or those of the changelog source that feeds the transform's input topic. Throws a
 * ConfigError naming each sink that cannot be resolved.
 */
export function legacySinkTargets(config: BanyanConfig, catalog: EventCatalog): Map<string, LegacySinkTarget> {
  const targets = new Map<string, LegacySinkTarget>();
  const problems: Array<{ path: Array<string | number>; message: string }> = [];
  for (const { sink, index: i } of sinksOfType(config, 'legacy')) {
    const transform = config.transforms.find((t) => t.name === sink.mapping);
    if (!transform) {
      problems.push(noTransform(config, sink.mapping, i));
      continue;
    }
    let mapping: RowMapping;
    try {
      mapping = reverseMapping(transform, catalog);
    } catch (error) {
      problems.push({ path: ['sinks', i, 'mapping'], message: (error as Error).message });
      continue;
    }
    const source = config.sources.find((s) => s.type === 'changelog' && changelogTopic(s) === transform.from);
    const database = sink.database ?? (source?.type === 'changelog' ? source.database : undefined);
    const table = sink.table ?? (source?.type === 'changelog' ? source.table : undefined);
    if (!database || !table) {
      problems.push({ path: ['sinks', i], message: `no changelog source writes ${transform.from}: give the sink's database and table` });
      continue;
    }
    if (!Object.hasOwn(config.databases, database)) {
      problems.push({ path: ['sinks', i, 'database'], message: `no database named "${database}"` });
      continue;
    }
    targets.set(sink.name, { mapping, database, table, topics: topicsOf(mapping, catalog) });
  }
  if (problems.length) throw configErrorAt(config, problems);
  return targets;
}

function noTransform(config: BanyanConfig, name: string, i: number): { path: Array<string | number>; message: string } {
  return { path: ['sinks', i, 'mapping'], message: `no transform named "${name}" (configured: ${config.transforms.map((t) => t.name).join(', ') || 'none'})` };
}

/**
 * Each Salesforce sink's write mapping (its transform's code mapping's write side), object and
 * external id field: the config's `object`, or that of the salesforce-cdc source feeding the
 * transform's input topic. Throws a ConfigError naming each sink that cannot be resolved.
 */
export function salesforceSinkTargets(config: BanyanConfig, catalog: EventCatalog): Map<string, SalesforceSinkTarget> {
  const targets = new Map<string, SalesforceSinkTarget>();
  const problems: Array<{ path: Array<string | number>; message: string }> = [];
  for (const { sink, index: i } of sinksOfType(config, 'salesforce')) {
    const transform = config.transforms.find((t) => t.name === sink.mapping);
    if (!transform) {
      problems.push(noTransform(config, sink.mapping, i));
      continue;
    }
    let mapping: RowMapping;
    try {
      mapping = salesforceWriteMapping(transform);
    } catch (error) {
      problems.push({ path: ['sinks', i, 'mapping'], message: (error as Error).message });
      continue;
    }
    const source = config.sources.find((s) => s.type === 'salesforce-cdc' && cdcTopic(s) === transform.from);
    const object = sink.object ?? (source?.type === 'salesforce-cdc' ? source.object : undefined);
    if (!object) {
      problems.push({ path: ['sinks', i], message: `no salesforce-cdc source writes ${transform.from}: give the sink's object` });
      continue;
    }
    if (!config.salesforce) {
      problems.push({ path: ['sinks', i], message: 'a salesforce sink needs the `salesforce` section' });
      continue;
    }
    targets.set(sink.name, { mapping, object, externalIdField: mapping.blocks[0]!.key[0]!.column, topics: topicsOf(mapping, catalog) });
  }
  if (problems.length) throw configErrorAt(config, problems);
  return targets;
}
