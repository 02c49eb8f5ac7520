import { Container, ContainerModule } from 'inversify';
import { HealthCheck, OffsetStore } from '../core';
import { Databases } from '../clients/databases';
import { Config, type RuntimeConfig } from './config';
import { DatabaseHealthCheck, KafkaHealthCheck, SalesforceHealthCheck, SchemaRegistryHealthCheck } from './health';
import { createKafka, KafkaClient } from './kafka';
import { componentLogger, Logger } from './logger';
import { KafkaOffsetStore } from './offsets';
import { createSchemaRegistry, SchemaRegistryClient } from './registry';
import { AvroEncoder } from './avro';
import { runnerKafka, runnerOptions, type RunnerKafka } from './source-runner';

/** DI token: how every runner of the process makes producers (one producer thread for all) and topics. */
export const RunnerKafkaToken = Symbol.for('banyan.RunnerKafka');
/** DI token: the process's one Avro encoder (schemas registered once per subject). */
export const AvroEncoderToken = Symbol.for('banyan.AvroEncoder');

/**
 * The shared infrastructure every stage uses: config, logger, Kafka, the registry, databases and
 * their health checks. Factories only: nothing connects until something asks for it.
 */
export function runtimeModule(config: RuntimeConfig, logger: Logger): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind<RuntimeConfig>(Config).toConstantValue(config);
    bind<Logger>(Logger).toConstantValue(logger);
    bind<KafkaClient>(KafkaClient)
      .toDynamicValue(() => createKafka(config.kafka, logger))
      .inSingletonScope();
    bind<SchemaRegistryClient>(SchemaRegistryClient)
      .toDynamicValue(() => createSchemaRegistry(config.schemaRegistry))
      .inSingletonScope();
    bind<RunnerKafka>(RunnerKafkaToken)
      .toDynamicValue((ctx) => runnerKafka(ctx.get<KafkaClient>(KafkaClient), runnerOptions(config), logger))
      .inSingletonScope();
    bind<AvroEncoder>(AvroEncoderToken)
      .toDynamicValue((ctx) => new AvroEncoder(ctx.get<SchemaRegistryClient>(SchemaRegistryClient)))
      .inSingletonScope();
    bind<OffsetStore>(OffsetStore)
      .toDynamicValue((ctx) => new KafkaOffsetStore(ctx.get<KafkaClient>(KafkaClient), config.kafka.topics.offsets, config.kafka.topics.replicationFactor))
      .inSingletonScope();
    bind<Databases>(Databases)
      .toDynamicValue(() => {
        // knex's own warnings (a failed connection acquire, a lost connection) as log events, not raw stderr lines.
        const knex = componentLogger(logger, 'knex', 'runtime');
        return new Databases(config.databases, { warn: (message) => knex.warn({ event: 'database.warning' }, message), error: (message) => knex.error({ event: 'database.error' }, message) });
      })
      .inSingletonScope();

    bind<HealthCheck>(HealthCheck).toDynamicValue(
      (ctx) => new KafkaHealthCheck(ctx.get<KafkaClient>(KafkaClient), config.kafka.brokers),
    );
    bind<HealthCheck>(HealthCheck).toDynamicValue(() => new SchemaRegistryHealthCheck(config.schemaRegistry));
    for (const name of Object.keys(config.databases)) {
      bind<HealthCheck>(HealthCheck).toDynamicValue((ctx) => {
        const databases = ctx.get<Databases>(Databases);
        return new DatabaseHealthCheck(name, config.databases[name]!, databases.get(name));
      });
    }
    if (config.salesforce) {
      const salesforce = config.salesforce;
      bind<HealthCheck>(HealthCheck).toDynamicValue(() => new SalesforceHealthCheck(salesforce));
    }
  });
}

/** Builds the container for a config: the runtime plus every stage's module. */
export function createContainer(config: RuntimeConfig, logger: Logger, stageModules: ContainerModule[] = []): Container {
  const container = new Container({ defaultScope: 'Singleton' });
  container.loadSync(runtimeModule(config, logger), ...stageModules);
  return container;
}
