import { ContainerModule } from 'inversify';
import { Source } from '../core';
import { Databases } from '../clients/databases';
import { createDialect } from '../dialects';
import type { BanyanConfig } from '../runtime/config';
import { componentLogger, Logger } from '../runtime/logger';
import { ChangelogSource } from './changelog/source';

/** The import stage: one Source per configured source, multi-bound to the Source token. */
export function importModule(config: BanyanConfig): ContainerModule {
  return new ContainerModule(({ bind }) => {
    for (const source of config.sources) {
      if (source.type !== 'changelog') continue;
      bind<Source>(Source).toDynamicValue((ctx) => {
        const databases = ctx.get<Databases>(Databases);
        const database = databases.config(source.database);
        return new ChangelogSource(source, {
          db: databases.get(source.database),
          dialect: createDialect(database),
          databaseName: source.database,
          originTag: config.originTag,
          logger: componentLogger(ctx.get<Logger>(Logger), `source:${source.name}`, 'import'),
        });
      });
    }
  });
}
