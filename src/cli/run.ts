import { Databases } from '../clients/databases';
import type { EventCatalog } from '../domain/catalog';
import { importModule } from '../import/module';
import { tableSchemas } from '../import/changelog/avro';
import { ChangeTypes } from '../runtime/change-types';
import { changeTypesOf, legacyColumnsFromSchema, validateTransforms, type InputColumn } from '../transforms/mappings';
import { catalogOf, transformsModule } from '../transforms/module';
import { exportModule, type SinkTargets } from '../export/module';
import { legacySinkTargets, salesforceSinkTargets, sinksOfType } from '../config/sinks';
import { isTableProblemCode } from '../import/changelog/inspect';
import { changelogSourceProblems } from '../import/changelog/preflight';
import { configErrorAt, type BanyanConfig } from '../config';
import { createRootLogger, type Logger } from '../runtime/logger';
import { createContainer } from '../runtime/module';
import { StatusServer } from '../runtime/http-server';
import { Pipelines } from '../runtime/pipelines';
import { errorMessage } from '../core';
import { createDialect } from '../dialects';
import type { TableInfo } from '../dialects/dialect';
import { isRetriableDatabaseError } from '../dialects/errors';
import { parseTableName } from '../dialects/shared-catalog';
import { mappingProblems } from '../export/plan';

/** `banyan run`: starts every pipeline of the config and runs until SIGINT/SIGTERM. */
export async function run(config: BanyanConfig): Promise<void> {
  const logger = createRootLogger(config.log.level);
  const catalog = catalogOf(config);
  const sinkTargets = { legacy: legacySinkTargets(config, catalog), salesforce: salesforceSinkTargets(config, catalog) };
  const container = createContainer(config, logger, [importModule(config), transformsModule(config, catalog), exportModule(config, catalog, sinkTargets)]);
  await refuseBadConfig(config, catalog, container.get(Databases), logger, sinkTargets);
  const pipelines = new Pipelines(container);
  // Change types are followed by a process that runs transforms or sinks (they decide what those serve).
  const changeTypes = config.transforms.length + config.sinks.length > 0 ? container.get<ChangeTypes>(ChangeTypes) : undefined;
  const statusServer = new StatusServer(
    () => pipelines.status(),
    (error, url) => logger.error({ event: 'http.failed', url, err: error }, `status server: ${url} failed`),
    // The lifecycle state of each change type, as this process obeys it now.
    () => (changeTypes ? { changeTypes: changeTypes.snapshot() } : {}),
  );
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    stopping ??= (async () => {
      logger.info({ event: 'banyan.stopping', signal }, 'stopping');
      await pipelines.stop();
      await changeTypes?.stop();
      await statusServer.stop();
      await container.get(Databases).destroy();
      logger.info({ event: 'banyan.stopped' }, 'stopped');
    })();
    return stopping;
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  try {
    const url = await statusServer.start(config.http.host, config.http.port);
    logger.info({ event: 'http.listening', url }, `status at ${url}`);
    await pipelines.start();
  } catch (error) {
    logger.error({ event: 'banyan.start_failed', err: error }, 'start failed');
    await stop('start failure');
    throw error;
  }
  logger.info({ event: 'banyan.running', sources: pipelines.status().map((s) => s.name) }, 'running');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stopping;
}

/**
 * A config naming a table that is not there (or has no primary key, or no changelog yet) cannot
 * run: fail at once with every such source listed. autoMigrate sources install their own changelog.
 * Nor can a transform whose mapping names a column its input does not have, or an event field that
 * does not exist, or a type that does not fit: the columns of each changelog source's table are
 * what its transforms are checked against.
 */
async function refuseBadConfig(config: BanyanConfig, catalog: EventCatalog, databases: Databases, logger: Logger, targets: SinkTargets): Promise<void> {
  const inputColumns: Record<string, InputColumn[]> = {};
  try {
    const problems = await changelogSourceProblems(
      config,
      databases,
      (p, source) => isTableProblemCode(p.code) || (p.code === 'CHANGELOG_NOT_INSTALLED' && !source.autoMigrate),
      logger,
      (topic, table, source) => (inputColumns[topic] = legacyColumnsFromSchema(tableSchemas(table, source.database).value)),
    );
    // Every change type a transform feeds has a lifecycle state to obey: it must be configured.
    config.transforms.forEach((transform, i) => {
      for (const type of changeTypesOf(transform, catalog)) {
        if (!Object.hasOwn(config.changeTypes, type)) {
          problems.push({
            path: ['transforms', i, 'changeTypes'],
            message: `transform "${transform.name}" feeds change type "${type}", which changeTypes does not configure (configured: ${Object.keys(config.changeTypes).join(', ') || 'none'})`,
          });
        }
      }
    });
    // So does every change type a sink writes.
    config.sinks.forEach((sink, i) => {
      const target = sink.type === 'legacy' ? targets.legacy.get(sink.name)! : targets.salesforce.get(sink.name)!;
      for (const type of new Set(target.mapping.blocks.map((b) => b.entity))) {
        if (!Object.hasOwn(config.changeTypes, type)) {
          problems.push({ path: ['sinks', i, 'mapping'], message: `sink "${sink.name}" writes change type "${type}", which changeTypes does not configure` });
        }
      }
    });
    // A sink whose table does not fit its mapping (a column the table lacks, another key) cannot write.
    for (const { sink, index: i } of sinksOfType(config, 'legacy')) {
      const target = targets.legacy.get(sink.name)!;
      const dialect = createDialect(config.databases[target.database]!);
      let table: TableInfo;
      try {
        table = await dialect.describeTable(databases.get(target.database), parseTableName(target.table));
      } catch (error) {
        if (isRetriableDatabaseError(error)) throw error;
        problems.push({ path: ['sinks', i], message: `sink "${sink.name}": ${errorMessage(error)}` });
        continue;
      }
      const softDelete = sink.onDelete !== 'row' ? sink.onDelete.softDelete.column : undefined;
      for (const message of mappingProblems(target.mapping, table, softDelete)) problems.push({ path: ['sinks', i, 'mapping'], message: `sink "${sink.name}" on ${target.table}: ${message}` });
    }
    if (problems.length > 0) throw configErrorAt(config, problems);
    validateTransforms(config, catalog, inputColumns);
  } catch (error) {
    await databases.destroy();
    throw error;
  }
}
