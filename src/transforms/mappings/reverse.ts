import type { RowMapping, RowMappingField } from '../../core';
import type { TransformConfig } from '../config';
import { compileBlocks } from './declarative';
import { inverseOf } from './conversions';
import { byName, type Catalog } from './validate';
import { CODE_MAPPINGS } from './registry';

/**
 * The reverse of a declarative transform, for the legacy sink: each block's event written back to
 * the columns it was read from, through the inverse of its conversions (an injective map, a unit
 * change). A field whose conversions forget something (trim, lower, upper, a map where two keys
 * share a value) cannot be written back: it is marked, and an event that changes it is
 * dead-lettered by the sink rather than written approximately.
 */
export function reverseMapping(transform: TransformConfig, catalog: Catalog): RowMapping {
  if (!transform.events) throw new Error(`transform "${transform.name}" is a code mapping (${transform.mapping}): only a declarative mapping can be reversed`);
  if (transform.format !== 'legacy-changelog') throw new Error(`transform "${transform.name}" reads ${transform.format}, not a legacy changelog: it names no legacy table`);
  const blocks = compileBlocks(transform, byName(catalog)).map((block) => ({
    event: block.def.name,
    ...(block.deleted ? { deletedEvent: block.deleted.name } : {}),
    entity: block.def.entity,
    key: block.key.map((k) => ({ field: k.name, column: k.column })),
    fields: block.fields.map((f): RowMappingField => {
      const convert = f.convert ?? [];
      const inverse = convert.length === 0 ? (value: unknown) => value : inverseOf(convert);
      return inverse
        ? { field: f.field, column: f.column, toColumn: inverse }
        : {
            field: f.field,
            column: f.column,
            toColumn: () => {
              throw new Error(`${f.field} cannot be written back`);
            },
            notWritable: `its conversions (${convert.map((c) => c.name).join(', ')}) cannot be reversed`,
          };
    }),
  }));
  return { name: transform.name, from: transform.from, rowEntity: blocks[0]!.entity, blocks };
}

/**
 * How a Salesforce sink writes a transform's events: the write side its code mapping declares
 * (`writes`), with the mapping's options as the transform gives them. Throws naming why not.
 */
export function salesforceWriteMapping(transform: TransformConfig): RowMapping {
  if (transform.format !== 'salesforce-cdc') throw new Error(`transform "${transform.name}" reads ${transform.format}, not Salesforce Change Data Capture: it names no Salesforce object`);
  const code = transform.mapping === undefined ? undefined : CODE_MAPPINGS.get(transform.mapping);
  if (!code?.writes) throw new Error(`transform "${transform.name}"'s mapping (${transform.mapping ?? 'declarative'}) has no write side for Salesforce`);
  return code.writes({ transform, options: code.options.parse(transform.options ?? {}) });
}
