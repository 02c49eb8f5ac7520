import { ContainerModule } from 'inversify';
import { HealthCheck } from '../core';
import { Databases } from '../clients/databases';
import { createDialect } from '../dialects';
import { configLocation } from '../runtime/config';
import { ChangelogSourceHealthCheck } from './changelog/health';
import type { ImportConfig } from './config';

// Apart from module.ts, so `banyan doctor` loads no connector (jsforce takes a second to load).
/** `banyan doctor`'s checks of the import stage: one per changelog source (table, key, changelog). */
export function importChecksModule(config: ImportConfig): ContainerModule {
  return new ContainerModule(({ bind }) => {
    config.sources.forEach((source, i) => {
      if (source.type !== 'changelog') return;
      const location = configLocation(config, ['sources', i, 'table']);
      bind<HealthCheck>(HealthCheck).toDynamicValue((ctx) => {
        const databases = ctx.get<Databases>(Databases);
        return new ChangelogSourceHealthCheck(source, location, databases.get(source.database), createDialect(config.databases[source.database]!));
      });
    });
  });
}
