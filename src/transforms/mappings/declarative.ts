import type { EventDefinition } from '../../domain/event';
import type { EventBlockConfig, FilterConfig, TransformConfig } from '../config';
import { compileConversion } from './conversions';
import { normalize, parseDecimal, relativeChangeBelow, type Decimal } from './decimal';
import { changedDraft, deletedDraft, fieldValue, runMapping, type EventDraft, type FieldPart, type KeyPart, type MappingFunction } from './events';
import type { ChangeView } from './views';

/** One `events:` block, compiled: the event, the one its deletes emit, its key, fields and filters. */
export interface CompiledBlock {
  def: EventDefinition;
  deleted: EventDefinition | undefined;
  key: KeyPart[];
  fields: FieldPart[];
  filters: CompiledFilter[];
}

interface CompiledFilter {
  field: FieldPart;
  config: FilterConfig;
  ratio?: Decimal;
}

/** The deleted event a block's deletes emit: `onDelete`, or the catalog's one deleted event of the entity. */
export function deletedEventOf(block: Pick<EventBlockConfig, 'onDelete'>, def: EventDefinition, catalog: Map<string, EventDefinition>): EventDefinition | undefined | string {
  if (block.onDelete === 'none') return undefined;
  if (block.onDelete !== undefined) return catalog.get(block.onDelete) ?? `unknown event "${block.onDelete}"`;
  const candidates = [...catalog.values()].filter((e) => e.kind === 'deleted' && e.entity === def.entity);
  if (candidates.length === 1) return candidates[0];
  return candidates.length === 0
    ? `no deleted event for entity "${def.entity}" in the catalog: name one with onDelete, or write onDelete: none`
    : `several deleted events for entity "${def.entity}" (${candidates.map((c) => c.name).join(', ')}): choose one with onDelete`;
}

/** Compiles a validated declarative transform (validateTransforms has checked every name). */
export function compileBlocks(transform: TransformConfig, catalog: Map<string, EventDefinition>): CompiledBlock[] {
  return (transform.events ?? []).map((block) => {
    const def = catalog.get(block.event)!;
    const deleted = deletedEventOf(block, def, catalog);
    const fields: FieldPart[] = Object.entries(block.fields).map(([field, f]) => ({ field, column: f.column, convert: f.convert.map(compileConversion) }));
    return {
      def,
      deleted: typeof deleted === 'string' ? undefined : deleted,
      key: block.key,
      fields,
      filters: block.filter.map((config) => ({
        config,
        field: fields.find((f) => f.field === config.field)!,
        ...(config.minRelativeChange !== undefined ? { ratio: parseDecimal(config.minRelativeChange)! } : {}),
      })),
    };
  });
}

/** The mapping function of a declarative transform. */
export function declarativeMapping(transform: TransformConfig, catalog: Map<string, EventDefinition>): MappingFunction {
  const blocks = compileBlocks(transform, catalog);
  return (input) => runMapping(transform.name, transform.format, input, (view) => mapBlocks(blocks, view));
}

export function mapBlocks(blocks: CompiledBlock[], view: ChangeView): { drafts: EventDraft[]; dropped: 'unchanged' | 'filtered' } {
  const drafts: EventDraft[] = [];
  let filtered = false;
  for (const block of blocks) {
    if (view.op === 'delete') {
      if (!block.deleted) continue;
      if (!block.filters.every((f) => holds(f, view, block.def))) {
        filtered = true;
        continue;
      }
      drafts.push(deletedDraft(view, block.deleted, block.key));
      continue;
    }
    const draft = changedDraft(view, block.def, block.key, block.fields);
    if (!draft) continue;
    for (const f of block.filters) {
      if (f.ratio && !view.full && draft.changedFields.includes(f.field.field) && insignificant(f, view)) {
        draft.changedFields = draft.changedFields.filter((name) => name !== f.field.field);
      }
    }
    if (draft.changedFields.length === 0 || !block.filters.every((f) => holds(f, view, block.def))) {
      filtered = true;
      continue;
    }
    drafts.push(draft);
  }
  return { drafts, dropped: filtered ? 'filtered' : 'unchanged' };
}

/** A change of the field smaller than the ratio of its old value (exact decimal arithmetic). */
function insignificant(f: CompiledFilter, view: ChangeView): boolean {
  const previous = view.previous(f.field.column);
  if (!previous.known) return false;
  const before = parseDecimal(previous.value);
  const after = parseDecimal(view.value(f.field.column));
  return before !== undefined && after !== undefined && relativeChangeBelow(before, after, f.ratio!);
}

/** Whether a condition (equals, in…) holds on the field's current value; minRelativeChange always does here. */
function holds(f: CompiledFilter, view: ChangeView, def: EventDefinition): boolean {
  const c = f.config;
  if (c.minRelativeChange !== undefined) return true;
  if (!view.known(f.field.column)) return c.whenUnknown === 'pass';
  const value = fieldValue(view.value(f.field.column), f.field, def);
  if (c.equals !== undefined) return same(value, c.equals);
  if (c.notEquals !== undefined) return !same(value, c.notEquals);
  if (c.in !== undefined) return c.in.some((v) => same(value, v));
  return !c.notIn!.some((v) => same(value, v));
}

/** Equal as the config means it: numbers by value (12.50 is 12.5), everything else as text. */
function same(value: unknown, expected: string | number | boolean | null): boolean {
  if (value === null || expected === null) return value === expected;
  if (typeof expected === 'number' || typeof value === 'number' || typeof value === 'bigint') {
    const a = typeof value === 'boolean' ? undefined : parseDecimal(value);
    const b = typeof expected === 'boolean' ? undefined : parseDecimal(expected);
    if (a && b) {
      const x = normalize(a);
      const y = normalize(b);
      return x.unscaled === y.unscaled && x.scale === y.scale;
    }
  }
  return String(value) === String(expected);
}
