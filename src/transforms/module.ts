import { ContainerModule, type ResolutionContext } from 'inversify';
import { OffsetStore, type SourceRecord, type Transform, type TransformResult } from '../core';
import type { DomainEvent } from '../domain/event';
import type { EventCatalog } from '../domain/catalog';
import { buildCatalog, type EventsConfig } from '../domain/config';
import { eventRecords } from '../domain/records';
import { registerDomainSchemasOnce } from '../domain/registry';
import { AvroDecoder, type AvroEncoder } from '../runtime/avro';
import { readerType } from '../runtime/avro-logical';
import { ChangeTypes, createChangeTypes, type ChangeTypeState } from '../runtime/change-types';
import type { RuntimeConfig } from '../runtime/config';
import { KafkaClient } from '../runtime/kafka';
import { componentLogger, Logger } from '../runtime/logger';
import { AvroEncoderToken, RunnerKafkaToken } from '../runtime/module';
import { Pipeline } from '../runtime/pipeline';
import { runnerOptions, type RunnerKafka } from '../runtime/source-runner';
import type { TransformConfig } from './config';
import { buildMapping, type MappingFunction } from './mappings';
import { TransformRunner } from './runner';

/** The configuration as the transform stage sees it: the runtime's sections, the transforms and the event catalog built from `events:`. */
export type TransformStageConfig = RuntimeConfig & { transforms: TransformConfig[] };

/** The event catalog of a config: the built-in events and those of its `events:` section, under its domain topic prefix. */
export function catalogOf(config: { events: EventsConfig; kafka: { topics: { domainPrefix: string } } }): EventCatalog {
  return buildCatalog(config.events, 'the events section', { topicPrefix: config.kafka.topics.domainPrefix });
}

/**
 * What a transform serves of each change type's lifecycle (docs/lifecycle.md): `decommissioned`
 * turns nothing into events; `new-owned` no longer turns legacy changes into events (the new
 * system is the record), it reports and counts them; `legacy-owned` and `dual` turn everything.
 */
export function lifecycleDrop(state: ChangeTypeState, event: DomainEvent): string | undefined {
  if (state === 'decommissioned') return 'lifecycle:decommissioned';
  if (state === 'new-owned' && event.origin === 'legacy') return 'lifecycle:new-owned';
  return undefined;
}

/**
 * The Transform the runner runs: the pure mapping, then the lifecycle of each event's change type
 * (read at the moment of mapping, so a transition is obeyed from the next batch on), then the events
 * as records (a deleted event with its tombstone).
 */
export function servedTransform(
  mapping: MappingFunction,
  catalog: EventCatalog,
  stateOf: (changeType: string) => ChangeTypeState,
  report: (event: DomainEvent, reason: string) => void,
): Transform {
  return (input): TransformResult => {
    const result = mapping(input);
    const dropped = { ...result.dropped };
    const records: SourceRecord[] = [];
    const from = { topic: input.topic, partition: input.partition, offset: input.offset };
    for (const event of result.events) {
      const reason = lifecycleDrop(stateOf(event.entity), event);
      if (reason) {
        dropped[reason] = (dropped[reason] ?? 0) + 1;
        report(event, reason);
        continue;
      }
      for (const record of eventRecords(event, catalog)) {
        // One that cannot be written names the input in its dead letter.
        record.input = from;
        records.push(record);
      }
    }
    // The records of one input are written all or none (a row's UserChanged never without its AddressChanged).
    if (records.length > 1) for (const record of records) record.group = `input:${from.topic}/${from.partition}@${from.offset}`;
    return { records, deadLetters: result.deadLetters, dropped };
  };
}

/** The transform stage: one TransformRunner per configured transform, multi-bound as a Pipeline. */
export function transformsModule(config: TransformStageConfig, catalog: EventCatalog): ContainerModule {
  return new ContainerModule(({ bind, isBound }) => {
    if (!isBound(ChangeTypes)) {
      bind(ChangeTypes)
        .toDynamicValue((ctx) => createChangeTypes(config, ctx.get(KafkaClient), ctx.get<Logger>(Logger)))
        .inSingletonScope();
    }
    // Once per process, before any transform maps: the domain schemas registered under BACKWARD,
    // and the change types read to the end of their control topic. Tried again after a failure.
    let ready: Promise<void> | undefined;
    const prepare = (ctx: ResolutionContext) => () => {
      ready ??= (async () => {
        await registerDomainSchemasOnce(config.schemaRegistry, catalog);
        // The domain topics exist before the first event, so a domain service can subscribe first.
        await ctx.get<RunnerKafka>(RunnerKafkaToken).ensureTopics(
          catalog.topics().map((topic) => ({ topic, numPartitions: config.kafka.topics.partitions, replicationFactor: config.kafka.topics.replicationFactor })),
        );
        await ctx.get<ChangeTypes>(ChangeTypes).start();
      })();
      ready.catch(() => (ready = undefined));
      return ready;
    };
    for (const transform of config.transforms) {
      bind<Pipeline>(Pipeline).toDynamicValue((ctx) => {
        const logger = componentLogger(ctx.get<Logger>(Logger), `transform:${transform.name}`, 'transform');
        const changeTypes = ctx.get<ChangeTypes>(ChangeTypes);
        const report = (event: DomainEvent, reason: string) =>
          logger.info(
            { event: 'transform.lifecycle_report', reason, type: event.type, entity: event.entity, entityId: event.entityId, changedFields: event.changedFields, origin: event.origin },
            `${event.type} of ${event.entity} ${event.entityId} not served: ${reason}`,
          );
        return new TransformRunner(
          servedTransform(buildMapping(transform, catalog), catalog, (type) => changeTypes.stateOf(type), report),
          ctx.get(KafkaClient),
          ctx.get<RunnerKafka>(RunnerKafkaToken),
          ctx.get<AvroEncoder>(AvroEncoderToken),
          new AvroDecoder(config.schemaRegistry, readerType),
          ctx.get<OffsetStore>(OffsetStore),
          logger,
          {
            ...runnerOptions(config),
            name: transform.name,
            topics: [transform.from],
            beforeConsume: prepare(ctx),
          },
        );
      });
    }
  });
}
