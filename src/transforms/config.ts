import { z } from 'zod';
import { identifier } from '../runtime/config/primitives';
import { parseDecimal, powerOfTen } from './mappings/decimal';

/**
 * The `transforms:` section of the configuration: which input topic feeds which events, through a
 * declarative mapping (`events:`) or a code mapping (`mapping:`). docs/mappings.md describes every
 * option with examples. What needs the event catalog or the input's columns (unknown events,
 * columns, types) is checked by validateTransforms (mappings/validate.ts) once both are known.
 */

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/** A power of ten, written as a number or as text: 100, "1000". */
const powerOfTenSchema = z
  .union([z.number(), z.string()])
  .refine((v) => {
    const d = parseDecimal(v);
    return d !== undefined && powerOfTen(d) !== undefined;
  }, 'expected a power of ten (10, 100, 1000…): unit changes stay exact and invertible')
  .transform((v) => powerOfTen(parseDecimal(v)!)!);

const ratioSchema = z
  .union([z.number(), z.string()])
  .refine((v) => {
    const d = parseDecimal(v);
    return d !== undefined && d.unscaled > 0n;
  }, 'expected a positive ratio, e.g. 0.0001 for 0.01 %')
  .transform((v) => (typeof v === 'number' ? String(v) : v));

export const conversionSchema = z
  .union([
    z.enum(['trim', 'lower', 'upper']),
    z.strictObject({
      map: z.record(z.string(), scalar).describe('value → value; the reverse (export) maps back when no two keys share a value'),
      unmapped: z
        .enum(['dead-letter', 'pass'])
        .default('dead-letter')
        .describe('a value not in the map: dead-letter the input (default), or pass it through unchanged'),
    }),
    z.strictObject({ multiply: powerOfTenSchema.describe('multiply by 10^n, exactly (a decimal point shift)') }),
    z.strictObject({ divide: powerOfTenSchema.describe('divide by 10^n, exactly (a decimal point shift)') }),
  ])
  .describe('a value conversion: trim | lower | upper | {map, unmapped} | {multiply: 10^n} | {divide: 10^n}');

/** A field: its column alone (`firstName: first_name`), or `{column, convert}`. */
export const fieldMappingSchema = z.preprocess(
  // The short form is {column}: one object schema, so a bad conversion's message is the one shown.
  (v) => (typeof v === 'string' ? { column: v } : v),
  z.strictObject({
    column: z.string().min(1).describe('the input column (legacy) or field (Salesforce, compound components dotted: MailingAddress.City)'),
    convert: z.array(conversionSchema).default([]).describe('conversions, applied in order'),
  }),
);

export const keySchema = z
  .union([z.string().min(1), z.array(z.string().min(1)).min(1), z.record(z.string(), z.string().min(1))])
  .describe('the entity id: a column, a list of columns (a composite key), or {keyField: column}')
  .transform((k): Array<{ name: string; column: string }> => {
    if (typeof k === 'string') return [{ name: k, column: k }];
    if (Array.isArray(k)) return k.map((c) => ({ name: c, column: c }));
    return Object.entries(k).map(([name, column]) => ({ name, column }));
  });

const OPERATORS = ['equals', 'notEquals', 'in', 'notIn', 'minRelativeChange'] as const;

export const filterSchema = z
  .strictObject({
    field: z.string().min(1).describe('an event field of this block'),
    equals: scalar.optional(),
    notEquals: scalar.optional(),
    in: z.array(scalar).optional(),
    notIn: z.array(scalar).optional(),
    minRelativeChange: ratioSchema
      .optional()
      .describe('an update changing this numeric field by less than this ratio of its old value does not count as changing it'),
    whenUnknown: z
      .enum(['drop', 'pass'])
      .default('drop')
      .describe('when the input does not carry the field’s current value (a Salesforce update that did not change it): drop the event, or let it pass'),
  })
  .superRefine((f, ctx) => {
    const given = OPERATORS.filter((o) => f[o] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({ code: 'custom', message: `expected exactly one of ${OPERATORS.join(', ')}${given.length ? `, got ${given.join(' and ')}` : ''}` });
    }
  });

export const eventBlockSchema = z.strictObject({
  event: z.string().min(1).describe('the event emitted when any of the fields below changed: a built-in event or one under `events:`'),
  key: keySchema,
  fields: z.record(z.string(), fieldMappingSchema).default({}).describe('event field ← input column, with conversions'),
  filter: z.array(filterSchema).default([]).describe('every condition must hold for the event to be emitted'),
  onDelete: z
    .string()
    .optional()
    .describe('the event emitted when the input is a delete: an event name, or `none`; default: the catalog’s deleted event of the same entity'),
});

export const transformSchema = z
  .strictObject({
    name: identifier.describe('unique name of this transform; names it in logs, status and dead letters'),
    from: z.string().min(1).describe('the input topic, e.g. legacy.app.users or salesforce.Contact'),
    format: z.enum(['legacy-changelog', 'salesforce-cdc']).describe('what the input records are'),
    changeTypes: z
      .array(identifier)
      .min(1)
      .optional()
      .describe('the change types (entities) this transform feeds; default: those of its events'),
    mapping: z.string().min(1).optional().describe('a code mapping, by its registered name (e.g. salesforce-contact)'),
    options: z.record(z.string(), z.unknown()).optional().describe('options of the code mapping'),
    events: z.array(eventBlockSchema).min(1).optional().describe('declarative mapping: one block per event'),
  })
  .superRefine((t, ctx) => {
    if ((t.mapping === undefined) === (t.events === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give either `mapping` (a code mapping) or `events` (a declarative mapping), not both or neither' });
    }
    if (t.options !== undefined && t.mapping === undefined) {
      ctx.addIssue({ code: 'custom', path: ['options'], message: '`options` are for a code mapping (`mapping:`)' });
    }
  });

export const transformsSchema = z.array(transformSchema).default([]);

export type ConversionConfig = z.infer<typeof conversionSchema>;
export type FilterConfig = z.infer<typeof filterSchema>;
export type EventBlockConfig = z.infer<typeof eventBlockSchema>;
export type TransformConfig = z.infer<typeof transformSchema>;
export type InputFormat = TransformConfig['format'];

/** Checks across transforms on the raw config (for the config's crossReferences): names are unique. */
export function transformsCrossReferences(raw: unknown): Array<{ path: Array<string | number>; message: string }> {
  const transforms = (raw as { transforms?: unknown } | null)?.transforms;
  if (!Array.isArray(transforms)) return [];
  const seen = new Set<unknown>();
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  transforms.forEach((t, i) => {
    const name = (t as { name?: unknown } | null)?.name;
    if (name === undefined) return;
    if (seen.has(name)) issues.push({ path: ['transforms', i, 'name'], message: `duplicate transform name "${String(name)}"` });
    seen.add(name);
  });
  return issues;
}
