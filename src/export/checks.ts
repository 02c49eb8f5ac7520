import { ContainerModule } from 'inversify';
import { HealthCheck } from '../core';
import { Databases } from '../clients/databases';
import { createDialect } from '../dialects';
import type { ExportStageConfig } from './module';
import type { LegacySinkTarget } from './legacy/config';
import { LegacySinkHealthCheck } from './legacy/health';

/** `banyan doctor`'s checks of the export stage: one per legacy sink (table, mapping, Banyan's tables). */
export function exportChecksModule(config: ExportStageConfig, targets: Map<string, LegacySinkTarget>): ContainerModule {
  return new ContainerModule(({ bind }) => {
    for (const sink of config.sinks) {
      if (sink.type !== 'legacy') continue;
      const target = targets.get(sink.name)!;
      bind<HealthCheck>(HealthCheck).toDynamicValue(
        (ctx) =>
          new LegacySinkHealthCheck(
            sink.name,
            target,
            ctx.get<Databases>(Databases).get(target.database),
            createDialect(config.databases[target.database]!),
            sink.onDelete !== 'row' ? sink.onDelete.softDelete.column : undefined,
          ),
      );
    }
  });
}
