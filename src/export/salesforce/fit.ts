import type { RowMapping } from '../../core';

/** The parts of a describe answer's field the sink checks. */
export interface DescribedField {
  name: string;
  createable?: boolean;
  updateable?: boolean;
  externalId?: boolean;
}

/**
 * Why a mapping's write side cannot write this object: fields it names that the object lacks or
 * that cannot be written, and an upsert key that is no external id field. Pure.
 */
export function objectProblems(mapping: RowMapping, object: string, fields: DescribedField[], externalIdField: string): string[] {
  const byName = new Map(fields.map((f) => [f.name.toLowerCase(), f]));
  const problems: string[] = [];
  const key = byName.get(externalIdField.toLowerCase());
  if (!key) problems.push(`${object} has no field ${externalIdField} to upsert by`);
  else if (!key.externalId) problems.push(`${object}.${externalIdField} is not an external id field (upsert needs one)`);
  for (const block of mapping.blocks) {
    for (const f of block.fields) {
      const field = byName.get(f.column.toLowerCase());
      if (!field) problems.push(`${block.event}.${f.field}: ${object} has no field ${f.column}`);
      else if (field.createable === false || field.updateable === false) problems.push(`${block.event}.${f.field}: ${object}.${f.column} cannot be written (createable ${field.createable}, updateable ${field.updateable})`);
    }
  }
  return problems;
}
