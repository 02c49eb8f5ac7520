import { importChecksModule } from '../import/checks';
import { exportChecksModule } from '../export/checks';
import { legacySinkTargets, salesforceSinkTargets } from '../config/sinks';
import { catalogOf } from '../transforms/module';
import type { Container } from 'inversify';
import { HealthCheck, type CheckResult } from '../core';
import { Databases } from '../clients/databases';
import type { BanyanConfig } from '../config';
import { runCheck } from '../runtime/health';
import { createKafka, KafkaClient } from '../runtime/kafka';
import type { Logger } from '../runtime/logger';
import { createContainer } from '../runtime/module';
import { formatTable } from '../runtime/table';

/**
 * The container doctor checks from. A failure of Kafka or a database is already in its row, so what
 * kafkajs and knex log about it themselves (each retry, each refused connection) is shown only at
 * log level debug: otherwise their lines would come after the table, from retries still running.
 */
export function doctorContainer(config: BanyanConfig, logger: Logger): Container {
  const container = createContainer(config, logger, [importChecksModule(config), exportChecksModule(config, { legacy: legacySinkTargets(config, catalogOf(config)), salesforce: salesforceSinkTargets(config, catalogOf(config)) })]);
  const libraries = ['debug', 'trace'].includes(logger.level) ? logger : logger.child({}, { level: 'silent' });
  const knex = libraries.child({ component: 'knex' });
  container.rebindSync<KafkaClient>(KafkaClient).toConstantValue(createKafka(config.kafka, libraries));
  container
    .rebindSync<Databases>(Databases)
    .toConstantValue(new Databases(config.databases, { warn: (m) => knex.warn(m), error: (m) => knex.error(m) }));
  return container;
}

/** Runs every bound health check side by side. */
export async function runDoctor(container: Container): Promise<CheckResult[]> {
  const checks = container.getAll<HealthCheck>(HealthCheck);
  return Promise.all(checks.map((c) => runCheck(c)));
}

export function formatChecks(results: CheckResult[]): string {
  return formatTable(
    ['CHECK', 'STATE', 'DETAIL'],
    results.map((r) => [r.name, r.ok ? 'ok' : 'FAIL', r.detail]),
  );
}
