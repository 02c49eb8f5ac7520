import avro from 'avsc';
import type { EventCatalog } from './catalog';

/**
 * The BACKWARD rule checked offline, as the registry checks it online: a new schema (the reader)
 * must read every event written with an older one (the writer). avsc's resolver says whether it
 * can; logical types are left out, so this is the structural check Avro's own rules make.
 */
export function backwardProblem(reader: object, writer: object): string | undefined {
  try {
    avro.Type.forSchema(reader as avro.Schema).createResolver(avro.Type.forSchema(writer as avro.Schema));
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Every subject the catalog publishes, with its current schema: `<topic>-key`, `<topic>-value`. */
export function publishedSchemas(catalog: EventCatalog): Array<{ subject: string; schema: object }> {
  return catalog.topics().flatMap((topic) => {
    const { key, value } = catalog.schemas(topic);
    return [
      { subject: `${topic}-key`, schema: key },
      { subject: `${topic}-value`, schema: value },
    ];
  });
}

/** The file a published version is kept in under src/domain/schemas/. */
export function baselineFile(subject: string, version: number): string {
  return `${subject}.v${version}.avsc`;
}

/** The versions kept for `subject`, oldest first, from the names of the files in the baseline folder. */
export function baselineVersions(subject: string, files: readonly string[]): number[] {
  const prefix = `${subject}.v`;
  return files
    .filter((f) => f.startsWith(prefix) && f.endsWith('.avsc') && /^\d+$/.test(f.slice(prefix.length, -5)))
    .map((f) => Number(f.slice(prefix.length, -5)))
    .sort((a, b) => a - b);
}
