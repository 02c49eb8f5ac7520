import { ContainerModule, type ResolutionContext } from 'inversify';
import { Source } from '../core';
import { SalesforceClient } from '../clients/salesforce/client';
import { Databases } from '../clients/databases';
import { createDialect } from '../dialects';
import type { ImportConfig, SourceConfig } from './config';
import { componentLogger, Logger } from '../runtime/logger';
import { ChangelogSource } from './changelog/source';
import type { Kafka } from 'kafkajs';
import { KafkaClient } from '../runtime/kafka';
import { WrittenFingerprints, writtenTopic } from '../runtime/salesforce-written';
import { createSalesforceCdcSource } from './salesforce-cdc';

type SourceFactory<T extends SourceConfig['type']> = (
  source: Extract<SourceConfig, { type: T }>,
  config: ImportConfig,
  ctx: ResolutionContext,
  logger: Logger,
) => Source;

/** How each kind of source is built; a new kind of source adds one entry. */
const FACTORIES: { [T in SourceConfig['type']]: SourceFactory<T> } = {
  changelog: (source, config, ctx, logger) => {
    const databases = ctx.get<Databases>(Databases);
    return new ChangelogSource(source, {
      db: databases.get(source.database),
      dialect: createDialect(config.databases[source.database]!),
      databaseName: source.database,
      originTag: config.originTag,
      // Whose tag is Banyan's: the user the legacy sink writes as (docs/export-legacy.md, Who may tag a write).
      originUser: config.databases[source.database]!.originUser ?? config.databases[source.database]!.user,
      logger,
    });
  },
  'salesforce-cdc': (source, config, ctx, logger) =>
    // The schema guarantees `salesforce` when such a source is configured.
    createSalesforceCdcSource(config.salesforce!, source, {
      logger,
      client: ctx.get<SalesforceClient>(SalesforceClient),
      // What the Salesforce sinks wrote, followed from Kafka: their changes coming back are echoes.
      written: new WrittenFingerprints(ctx.get<Kafka>(KafkaClient), writtenTopic(config.kafka.clientId), logger, source.echoWindowMs, {
        partitions: config.kafka.topics.partitions,
        replicationFactor: config.kafka.topics.replicationFactor,
      }),
    }),
};

/** The import stage: one Source per configured source, multi-bound to the Source token. */
export function importModule(config: ImportConfig): ContainerModule {
  return new ContainerModule(({ bind }) => {
    if (config.salesforce) {
      const salesforce = config.salesforce;
      // One login and one API-call budget for every Salesforce component of the process.
      bind<SalesforceClient>(SalesforceClient)
        .toDynamicValue((ctx) => new SalesforceClient(salesforce, { logger: componentLogger(ctx.get<Logger>(Logger), 'salesforce-client', 'import') }))
        .inSingletonScope();
    }
    for (const source of config.sources) {
      bind<Source>(Source).toDynamicValue((ctx) => {
        const logger = componentLogger(ctx.get<Logger>(Logger), `source:${source.name}`, 'import');
        const build = FACTORIES[source.type] as SourceFactory<typeof source.type>;
        return build(source as never, config, ctx, logger);
      });
    }
  });
}
