import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { RuntimeConfig } from './config';

export const SchemaRegistryClient = Symbol.for('banyan.SchemaRegistryClient');
export type SchemaRegistryClient = SchemaRegistry;

/** The Basic authorization header for the registry, when it has credentials. */
export function registryAuthHeaders(config: RuntimeConfig['schemaRegistry']): Record<string, string> {
  if (!config.username || !config.password) return {};
  return { authorization: `Basic ${Buffer.from(`${config.username}:${config.password}`).toString('base64')}` };
}

export function createSchemaRegistry(config: RuntimeConfig['schemaRegistry']): SchemaRegistry {
  const auth =
    config.username && config.password ? { auth: { username: config.username, password: config.password } } : {};
  return new SchemaRegistry({ host: config.url, ...auth });
}

/**
 * Registers an Avro schema under `subject` with BACKWARD compatibility and returns its id.
 * The registry refuses a schema that would break readers of the older versions.
 */
export async function registerAvro(registry: SchemaRegistry, subject: string, schema: object): Promise<number> {
  const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(schema) }, { subject });
  return id;
}
