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

type Problem = { path: Array<string | number>; message: string };

/**
 * Each sink of `type` resolved to its target: its transform found, the mapping it writes made by
 * `mappingOf`, the rest by `target` (which reports what it cannot resolve through `problem` and
 * returns undefined). Throws a ConfigError naming every sink that cannot be resolved.
 */
function resolveSinks<T extends SinkConfig['type'], Target>(
  config: BanyanConfig,
  type: T,
  mappingOf: (transform: BanyanConfig['transforms'][number]) => RowMapping,
  target: (
    sink: Extract<SinkConfig, { type: T }>,
    transform: BanyanConfig['transforms'][number],
    mapping: RowMapping,
    problem: (path: Array<string | number>, message: string) => undefined,
  ) => Target | undefined,
): Map<string, Target> {
  const targets = new Map<string, Target>();
  const problems: Problem[] = [];
  for (const { sink, index: i } of sinksOfType(config, type)) {
    const transform = config.transforms.find((t) => t.name === sink.mapping);
    if (!transform) {
      problems.push({ path: ['sinks', i, 'mapping'], message: `no transform named "${sink.mapping}" (configured: ${config.transforms.map((t) => t.name).join(', ') || 'none'})` });
      continue;
    }
    let mapping: RowMapping;
    try {
      mapping = mappingOf(transform);
    } catch (error) {
      problems.push({ path: ['sinks', i, 'mapping'], message: (error as Error).message });
      continue;
    }
    const resolved = target(sink, transform, mapping, (path, message) => void problems.push({ path: ['sinks', i, ...path], message }));
    if (resolved !== undefined) targets.set(sink.name, resolved);
  }
  if (problems.length) throw configErrorAt(config, problems);
  return targets;
}

/**
 * Each legacy sink's mapping (the reverse of its transform's) and table: the config's `database`
 * and `table`, or those of the changelog source that feeds the transform's input topic. Throws a
 * ConfigError naming each sink that cannot be resolved.
 */
export function legacySinkTargets(config: BanyanConfig, catalog: EventCatalog): Map<string, LegacySinkTarget> {
  return resolveSinks<'legacy', LegacySinkTarget>(config, 'legacy', (transform) => reverseMapping(transform, catalog), (sink, transform, mapping, problem) => {
    const source = config.sources.find((s) => s.type === 'changelog' && changelogTopic(s) === transform.from);
    const database = sink.database ?? (source?.type === 'changelog' ? source.database : undefined);
    const table = sink.table ?? (source?.type === 'changelog' ? source.table : undefined);
    if (!database || !table) return problem([], `no changelog source writes ${transform.from}: give the sink's database and table`);
    if (!Object.hasOwn(config.databases, database)) return problem(['database'], `no database named "${database}"`);
    return { mapping, database, table, topics: topicsOf(mapping, catalog) };
  });
}

/**
 * Each Salesforce sink's write mapping (its transform's code mapping's write side), object and
 * external id field: the config's `object`, or that of the salesforce-cdc source feeding the
 * transform's input topic. Throws a ConfigError naming each sink that cannot be resolved.
 */
export function salesforceSinkTargets(config: BanyanConfig, catalog: EventCatalog): Map<string, SalesforceSinkTarget> {
  return resolveSinks<'salesforce', SalesforceSinkTarget>(config, 'salesforce', salesforceWriteMapping, (sink, transform, mapping, problem) => {
    const source = config.sources.find((s) => s.type === 'salesforce-cdc' && cdcTopic(s) === transform.from);
    const object = sink.object ?? (source?.type === 'salesforce-cdc' ? source.object : undefined);
    if (!object) return problem([], `no salesforce-cdc source writes ${transform.from}: give the sink's object`);
    if (!config.salesforce) return problem([], 'a salesforce sink needs the `salesforce` section');
    return { mapping, object, externalIdField: mapping.blocks[0]!.key[0]!.column, topics: topicsOf(mapping, catalog) };
  });
}
