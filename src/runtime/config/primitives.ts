import { z } from 'zod';

/**
 * The building blocks every section of the configuration is written with, wherever it lives (the
 * runtime's own sections here, each connector's next to the connector). Secrets never appear
 * literally in the YAML: fields listed in SECRET_FIELDS must be `${ENV_VAR}` references (checked
 * by the loader before interpolation).
 */
export const SECRET_FIELDS = ['password', 'clientSecret', 'privateKey', 'securityToken'] as const;

export const port = z.coerce.number().int().min(1).max(65535);
export const positiveInt = z.coerce.number().int().positive();
export const bool = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);
export const identifier = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'use letters, digits, "_", "." and "-" only, starting with a letter or "_"');

/** What every source's config has. */
export const sourceCommon = {
  name: identifier.describe('unique name of this source; keys its offsets and names it in logs'),
  topic: z.string().optional().describe('target topic; defaults per source type'),
  pollIntervalMs: positiveInt.default(500),
  batchSize: positiveInt.default(5000),
};

