import type { z } from 'zod';
import type { RowMapping } from '../../core';
import type { EventDefinition } from '../../domain/event';
import type { TransformConfig } from '../config';
import type { MappingFunction } from './events';
import type { InputFormat } from './views';

/**
 * A mapping written in TypeScript, for what the declarative form cannot say: a pure function
 * (no I/O, no clock), one file each (`src/transforms/<system>-<role>.transform.ts`), registered by
 * name in mappings/registry.ts and chosen in the config with `mapping: <name>`.
 */
export interface CodeMapping<Options = unknown> {
  name: string;
  /** The input it reads. */
  format: InputFormat;
  doc: string;
  /** The events it can emit (checked against the catalog at start). */
  events: string[];
  /** Its `options:` in the config; the parsed value is handed to build. */
  options: z.ZodType<Options>;
  /** The columns (or Salesforce fields) it reads, checked against the input's when they are known. */
  reads(options: Options): string[];
  build(context: { transform: TransformConfig; catalog: Map<string, EventDefinition>; options: Options }): MappingFunction;
  /**
   * The way back, where the mapping has one: how a sink writes its events into the system it reads
   * (Salesforce fields by their REST names, keyed by the external id field). Absent: not writable.
   */
  writes?(context: { transform: TransformConfig; options: Options }): RowMapping;
}

/** A catalog event a code mapping needs; validateTransforms has made sure it is there. */
export function eventFrom(catalog: Map<string, EventDefinition>, name: string): EventDefinition {
  const def = catalog.get(name);
  if (!def) throw new Error(`event ${name} is not in the catalog`);
  return def;
}
