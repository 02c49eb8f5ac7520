import { z } from 'zod';
import type { RuntimeConfig } from '../runtime/config';
import { changelogSourceSchema } from './changelog/config';
import { salesforceCdcSourceSchema } from './salesforce-cdc/config';

/** Every kind of source, told apart by `type`; a new kind of source adds its schema here. */
export const sourceSchema = z.discriminatedUnion('type', [changelogSourceSchema, salesforceCdcSourceSchema]);

export type SourceConfig = z.infer<typeof sourceSchema>;

/** The configuration as the import stage sees it: the runtime's sections and the sources. */
export type ImportConfig = RuntimeConfig & { sources: SourceConfig[] };
