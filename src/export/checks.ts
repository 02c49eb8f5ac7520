import { ContainerModule } from 'inversify';
import { HealthCheck } from '../core';
import { Databases } from '../clients/databases';
import { createDialect } from '../dialects';
import type { SalesforceConfig } from '../runtime/config';
import type { ExportStageConfig } from './module';
import { LegacySinkHealthCheck } from './legacy/health';
import type { SinkTargets } from './module';
import { SalesforceSinkHealthCheck } from './salesforce/health';

/** `banyan doctor`'s checks of the export stage: one per sink (legacy: table, mapping, Banyan's tables; Salesforce: object and mapping). */
export function exportChecksModule(config: ExportStageConfig & { salesforce?: SalesforceConfig | undefined }, targets: SinkTargets): ContainerModule {
  return new ContainerModule(({ bind }) => {
    for (const sink of config.sinks) {
      if (sink.type === 'salesforce') {
        const target = targets.salesforce.get(sink.name)!;
        bind<HealthCheck>(HealthCheck).toConstantValue(new SalesforceSinkHealthCheck(sink.name, target, config.salesforce!));
        continue;
      }
      const target = targets.legacy.get(sink.name)!;
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
