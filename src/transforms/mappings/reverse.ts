import type { RowMapping, RowMappingField } from '../../core';
import type { TransformConfig } from '../config';
import { compileBlocks } from './declarative';
import { inverseOf } from './conversions';
import { byName, type Catalog } from './validate';

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
