import type { EventCatalog } from './catalog';

/**
 * The domain topics' schemas in a Confluent-compatible registry (Confluent, or Apicurio's ccompat
 * API), subjects named `<topic>-key` and `<topic>-value` as the runtime names them. Every subject
 * is set to BACKWARD compatibility before its schema is registered: the registry then refuses
 * (HTTP 409) a schema whose readers could not read the events already written.
 */
export interface RegistryOptions {
  /** The API base URL. Example: http://127.0.0.1:18081/apis/ccompat/v7 */
  url: string;
  username?: string | undefined;
  password?: string | undefined;
}

/** A schema the registry refused because it breaks compatibility (HTTP 409), or another refusal. */
export class SchemaRegistrationError extends Error {
  constructor(
    message: string,
    readonly subject: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'SchemaRegistrationError';
  }
}

function normalize(registry: string | RegistryOptions): RegistryOptions {
  return typeof registry === 'string' ? { url: registry } : registry;
}

async function call(registry: RegistryOptions, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const headers: Record<string, string> = { 'content-type': 'application/vnd.schemaregistry.v1+json' };
  if (registry.username && registry.password) headers.authorization = `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}`;
  const response = await fetch(`${registry.url.replace(/\/$/, '')}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await response.text();
  let json: unknown = text;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: keep the text for the message.
  }
  return { status: response.status, json };
}

function messageOf(json: unknown): string {
  return typeof json === 'object' && json !== null && 'message' in json ? String((json as { message: unknown }).message) : String(json).slice(0, 300);
}

/** Sets `subject` to BACKWARD compatibility, and checks that the registry now says so. */
export async function setBackward(registry: string | RegistryOptions, subject: string): Promise<void> {
  const options = normalize(registry);
  const path = `/config/${encodeURIComponent(subject)}`;
  const put = await call(options, 'PUT', path, { compatibility: 'BACKWARD' });
  // 409: another process set the rule at the same moment (Apicurio: "a rule named 'COMPATIBILITY'
  // already exists"); the read below says whether it is BACKWARD.
  if (put.status !== 200 && put.status !== 409) throw new SchemaRegistrationError(`setting ${subject} to BACKWARD: the registry answered HTTP ${put.status}: ${messageOf(put.json)}`, subject, put.status);
  const got = await call(options, 'GET', path);
  // Confluent answers {compatibilityLevel}, some versions and Apicurio may say {compatibility}.
  const level = (got.json as { compatibilityLevel?: string; compatibility?: string } | null) ?? {};
  if ((level.compatibilityLevel ?? level.compatibility) !== 'BACKWARD') {
    throw new SchemaRegistrationError(`${subject} is not BACKWARD after setting it: the registry says ${JSON.stringify(got.json)}`, subject, got.status);
  }
}

/**
 * Sets `subject` to BACKWARD and registers `schema` under it; returns its id (the same id again for
 * a schema already registered). A schema that breaks compatibility is a SchemaRegistrationError
 * with status 409 naming the subject and the registry's reason.
 */
export async function registerBackward(registry: string | RegistryOptions, subject: string, schema: object): Promise<number> {
  const options = normalize(registry);
  await setBackward(options, subject);
  const { status, json } = await call(options, 'POST', `/subjects/${encodeURIComponent(subject)}/versions`, { schema: JSON.stringify(schema) });
  if (status !== 200) {
    const why = status === 409 ? 'it is not BACKWARD compatible with the registered versions (readers of the new schema could not read events already written)' : 'refused';
    throw new SchemaRegistrationError(`registering the schema of ${subject}: ${why}; the registry answered HTTP ${status}: ${messageOf(json)}`, subject, status);
  }
  return (json as { id: number }).id;
}

/** The ids of a topic's registered key and value schemas. */
export interface RegisteredTopic {
  keySubject: string;
  valueSubject: string;
  key: number;
  value: number;
}

/**
 * Registers the key and value schema of every topic of the catalog (or only `topics`) under
 * BACKWARD compatibility, the same schema objects eventRecords hands the runtime, so both name one
 * id. Returns the ids by topic. Run it at start, before any event is written.
 */
export async function registerDomainSchemas(
  registry: string | RegistryOptions,
  catalog: EventCatalog,
  options: { topics?: readonly string[] } = {},
): Promise<Record<string, RegisteredTopic>> {
  const result: Record<string, RegisteredTopic> = {};
  for (const topic of options.topics ?? catalog.topics()) {
    const schemas = catalog.schemas(topic);
    const keySubject = `${topic}-key`;
    const valueSubject = `${topic}-value`;
    result[topic] = {
      keySubject,
      valueSubject,
      key: await registerBackward(registry, keySubject, schemas.key),
      value: await registerBackward(registry, valueSubject, schemas.value),
    };
  }
  return result;
}

/** Registrations under way or done, by catalog: one per process, whichever stage starts first. */
const registered = new WeakMap<EventCatalog, Promise<unknown>>();

/**
 * registerDomainSchemas once per catalog for the whole process (transforms and sinks both need the
 * schemas before they start; neither registers them again), tried again after a failure.
 */
export function registerDomainSchemasOnce(registry: string | RegistryOptions, catalog: EventCatalog): Promise<unknown> {
  let done = registered.get(catalog);
  if (!done) {
    done = registerDomainSchemas(registry, catalog);
    registered.set(catalog, done);
    done.catch(() => registered.delete(catalog));
  }
  return done;
}

/** The schema the registry holds under `id` (a writer schema, to decode a record with). */
export async function schemaById(registry: string | RegistryOptions, id: number): Promise<object> {
  const { status, json } = await call(normalize(registry), 'GET', `/schemas/ids/${id}`);
  if (status !== 200) throw new Error(`schema id ${id}: the registry answered HTTP ${status}: ${messageOf(json)}`);
  return JSON.parse((json as { schema: string }).schema) as object;
}
