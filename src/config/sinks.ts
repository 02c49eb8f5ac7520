import type { RowMapping } from '../core';
import type { LegacySinkTarget } from '../export/legacy/config';
import type { EventCatalog } from '../domain/catalog';
import { changelogTopic } from '../import/changelog/config';
import { reverseMapping } from '../transforms/mappings';
import { configErrorAt } from '../runtime/config/load';
import type { BanyanConfig } from './index';

export type { LegacySinkTarget };

/**
 * Each legacy sink's mapping (the reverse of its transform's) and table: the config's `database`
 * and `table`, or those of the changelog source that feeds the transform's input topic. Throws a
 * ConfigError naming each sink that cannot be resolved.
 */
export function legacySinkTargets(config: BanyanConfig, catalog: EventCatalog): Map<string, LegacySinkTarget> {
  const targets = new Map<string, LegacySinkTarget>();
  const problems: Array<{ path: Array<string | number>; message: string }> = [];
  config.sinks.forEach((sink, i) => {
    const transform = config.transforms.find((t) => t.name === sink.mapping);
    if (!transform) {
      problems.push({ path: ['sinks', i, 'mapping'], message: `no transform named "${sink.mapping}" (configured: ${config.transforms.map((t) => t.name).join(', ') || 'none'})` });
      return;
    }
    let mapping: RowMapping;
    try {
      mapping = reverseMapping(transform, catalog);
    } catch (error) {
      problems.push({ path: ['sinks', i, 'mapping'], message: (error as Error).message });
      return;
    }
    const source = config.sources.find((s) => s.type === 'changelog' && changelogTopic(s) === transform.from);
    const database = sink.database ?? (source?.type === 'changelog' ? source.database : undefined);
    const table = sink.table ?? (source?.type === 'changelog' ? source.table : undefined);
    if (!database || !table) {
      problems.push({ path: ['sinks', i], message: `no changelog source writes ${transform.from}: give the sink's database and table` });
      return;
    }
    if (!Object.hasOwn(config.databases, database)) {
      problems.push({ path: ['sinks', i, 'database'], message: `no database named "${database}"` });
      return;
    }
    const topics = [...new Set(mapping.blocks.flatMap((b) => [b.event, b.deletedEvent].filter((e): e is string => !!e)).map((e) => catalog.definition(e)!.topic))];
    targets.set(sink.name, { mapping, database, table, topics });
  });
  if (problems.length) throw configErrorAt(config, problems);
  return targets;
}
