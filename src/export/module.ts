import { ContainerModule } from 'inversify';
import type { Kafka } from 'kafkajs';
import type { Knex } from 'knex';
import { Databases } from '../clients/databases';
import { createDialect } from '../dialects';
import type { EventCatalog } from '../domain/catalog';
import { DomainDecoder } from '../domain/decoder';
import { registerDomainSchemasOnce } from '../domain/registry';
import type { AvroEncoder } from '../runtime/avro';
import { ChangeTypes, createChangeTypes } from '../runtime/change-types';
import type { RuntimeConfig } from '../runtime/config';
import { KafkaClient } from '../runtime/kafka';
import { componentLogger, Logger } from '../runtime/logger';
import { AvroEncoderToken, RunnerKafkaToken } from '../runtime/module';
import { Pipeline } from '../runtime/pipeline';
import { runnerOptions, type RunnerKafka } from '../runtime/source-runner';
import { SalesforceClient } from '../clients/salesforce/client';
import type { LegacySinkConfig, LegacySinkTarget, SinkConfig } from './legacy/config';
import { LegacySink } from './legacy/sink';
import type { SalesforceSinkConfig, SalesforceSinkTarget } from './salesforce/config';
import { SalesforceSink } from './salesforce/sink';

export type ExportStageConfig = RuntimeConfig & { sinks: SinkConfig[] };

/** What a legacy sink needs from the process: its clients, its change types, its logger. */
export interface LegacySinkContext {
  kafka: Kafka;
  runnerKafka: RunnerKafka;
  encoder: AvroEncoder;
  db: Knex;
  changeTypes: ChangeTypes;
  logger: Logger;
}

/** One legacy sink of the config, built as `banyan run` builds it (the module, the bench and the tests share this). */
export function createLegacySink(config: ExportStageConfig, catalog: EventCatalog, sink: LegacySinkConfig, target: LegacySinkTarget, context: LegacySinkContext): LegacySink {
  const { changeTypes } = context;
  return new LegacySink(
    { ...context, decoder: new DomainDecoder(config.schemaRegistry, catalog), dialect: createDialect(config.databases[target.database]!), mapping: target.mapping },
    {
      ...runnerOptions(config),
      name: sink.name,
      topics: target.topics,
      table: target.table,
      originTag: config.originTag,
      missingRowWaitMs: sink.missingRow.waitMs,
      partitionsConsumedConcurrently: sink.partitionsConsumedConcurrently,
      ...(sink.onDelete !== 'row' ? { softDelete: sink.onDelete.softDelete } : {}),
      beforeConsume: domainReady(config, catalog, changeTypes),
    },
  );
}

/** The domain schemas exist (a domain service may publish first) and the change types are read. */
function domainReady(config: ExportStageConfig, catalog: EventCatalog, changeTypes: ChangeTypes): () => Promise<void> {
  return async () => {
    await registerDomainSchemasOnce(config.schemaRegistry, catalog);
    await changeTypes.start();
  };
}

/** What a Salesforce sink needs from the process: its clients (the one Salesforce client of the process), its change types, its logger. */
export interface SalesforceSinkContext {
  kafka: Kafka;
  runnerKafka: RunnerKafka;
  encoder: AvroEncoder;
  client: SalesforceClient;
  changeTypes: ChangeTypes;
  logger: Logger;
}

/** One Salesforce sink of the config, built as `banyan run` builds it (the module, the bench and the tests share this). */
export function createSalesforceSink(config: ExportStageConfig, catalog: EventCatalog, sink: SalesforceSinkConfig, target: SalesforceSinkTarget, context: SalesforceSinkContext): SalesforceSink {
  return new SalesforceSink(
    { ...context, decoder: new DomainDecoder(config.schemaRegistry, catalog), mapping: target.mapping },
    {
      ...runnerOptions(config),
      name: sink.name,
      topics: target.topics,
      object: target.object,
      externalIdField: target.externalIdField,
      lingerMs: sink.lingerMs,
      maxRecordsPerCall: sink.maxRecordsPerCall,
      bulk: sink.bulk,
      apiBudget: sink.apiBudget,
      retry: sink.retry,
      partitionsConsumedConcurrently: sink.partitionsConsumedConcurrently,
      beforeConsume: domainReady(config, catalog, context.changeTypes),
    },
  );
}

/** Each sink's resolved target, by sink name (src/config/sinks.ts). */
export interface SinkTargets {
  legacy: Map<string, LegacySinkTarget>;
  salesforce: Map<string, SalesforceSinkTarget>;
}

/** The export stage: one LegacySink or SalesforceSink per configured sink, multi-bound as a Pipeline. */
export function exportModule(config: ExportStageConfig, catalog: EventCatalog, targets: SinkTargets): ContainerModule {
  return new ContainerModule(({ bind, isBound }) => {
    if (!isBound(ChangeTypes)) {
      bind(ChangeTypes)
        .toDynamicValue((ctx) => createChangeTypes(config, ctx.get(KafkaClient), ctx.get<Logger>(Logger)))
        .inSingletonScope();
    }
    for (const sink of config.sinks) {
      bind<Pipeline>(Pipeline).toDynamicValue((ctx) => {
        // What every sink gets from the process.
        const common = {
          kafka: ctx.get<Kafka>(KafkaClient),
          runnerKafka: ctx.get<RunnerKafka>(RunnerKafkaToken),
          encoder: ctx.get<AvroEncoder>(AvroEncoderToken),
          changeTypes: ctx.get<ChangeTypes>(ChangeTypes),
          logger: componentLogger(ctx.get<Logger>(Logger), `sink:${sink.name}`, 'export'),
        };
        if (sink.type === 'salesforce') {
          // The process's one Salesforce client (importModule binds it): one login, one count of API calls.
          return createSalesforceSink(config, catalog, sink, targets.salesforce.get(sink.name)!, { ...common, client: ctx.get<SalesforceClient>(SalesforceClient) });
        }
        const target = targets.legacy.get(sink.name)!;
        return createLegacySink(config, catalog, sink, target, { ...common, db: ctx.get(Databases).get(target.database) });
      });
    }
  });
}
