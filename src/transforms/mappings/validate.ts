import { ConfigError } from '../../core';
import type { EventDefinition } from '../../domain/event';
import { configErrorAt } from '../../runtime/config/load';
import type { TransformConfig } from '../config';
import type { CodeMapping } from './code';
import { compileConversion } from './conversions';
import { deletedEventOf, declarativeMapping } from './declarative';
import type { MappingFunction } from './events';
import { CODE_MAPPINGS } from './registry';
import { mismatch, type InputColumn, type ValueKind } from './types';
import { typeName } from '../../domain/values';
import { avroName } from './views';

type Path = Array<string | number>;
interface Problem {
  path: Path;
  message: string;
}

/** The event definitions: a list, or the domain's EventCatalog (its `events`). */
export type Catalog = readonly EventDefinition[] | { readonly events: readonly EventDefinition[] };

export function byName(catalog: Catalog): Map<string, EventDefinition> {
  const list = 'events' in catalog ? catalog.events : (catalog as readonly EventDefinition[]);
  return new Map(list.map((e) => [e.name, e]));
}

/** The config as far as transforms go: the parsed file (so problems are named with their line). */
export interface TransformsConfig {
  transforms?: TransformConfig[];
}

/**
 * Checks every transform against the event catalog and, where given, the columns of its input
 * topic (`inputColumns` by topic: a legacy table's from legacyColumnsFromSchema, a Salesforce
 * object's from its describe): unknown events, event fields, columns, code mappings and options,
 * types that do not fit, filters on unmapped fields, changeTypes that miss an event's entity, and
 * keys that do not name the entity's key fields. Throws one ConfigError naming each
 * problem's transform, field and line.
 */
export function validateTransforms(config: TransformsConfig, catalog: Catalog, inputColumns?: Record<string, InputColumn[]>): void {
  const events = byName(catalog);
  const problems: Problem[] = [];
  (config.transforms ?? []).forEach((transform, i) => {
    const found = transformProblems(transform, events, inputColumns?.[transform.from]);
    problems.push(...found.map((p) => ({ path: ['transforms', i, ...p.path], message: `transform "${transform.name}": ${p.message}` })));
  });
  if (problems.length > 0) throw configErrorAt(config, problems);
}

/**
 * The mapping function of one transform. Checks it against the catalog first (without the input's
 * columns, and without lines: validateTransforms is the check that names them).
 */
export function buildMapping(transform: TransformConfig, catalog: Catalog): MappingFunction {
  const events = byName(catalog);
  const problems = transformProblems(transform, events, undefined);
  if (problems.length > 0) {
    throw new ConfigError(`transform "${transform.name}"`, problems.map((p) => ({ path: p.path.join('.'), message: p.message })));
  }
  if (transform.mapping !== undefined) {
    const code = CODE_MAPPINGS.get(transform.mapping)!;
    return code.build({ transform, catalog: events, options: code.options.parse(transform.options ?? {}) });
  }
  return declarativeMapping(transform, events);
}

function transformProblems(
  transform: TransformConfig,
  events: Map<string, EventDefinition>,
  columns: InputColumn[] | undefined,
): Problem[] {
  const problems: Problem[] = [];
  const byName = columns && new Map(columns.map((c) => [c.name, c]));
  const entities = new Set<string>();
  const inputWord = transform.format === 'legacy-changelog' ? 'column' : 'field';

  /** The column's type, or a problem when the input is known and has no such column. */
  const column = (name: string, path: Path): ValueKind | undefined => {
    if (!byName) return { type: 'any' };
    const c = byName.get(name);
    if (!c) {
      problems.push({ path, message: `unknown ${inputWord} "${name}" in ${transform.from} (it has: ${[...byName.keys()].join(', ')})` });
      return undefined;
    }
    if (transform.format === 'legacy-changelog' && c.field !== undefined && c.field !== avroName(name)) {
      problems.push({ path, message: `column "${name}" is stored as field "${c.field}", not "${avroName(name)}" (two columns clean up to one Avro name): rename one of them` });
    }
    return c.type;
  };
  const useEvent = (name: string, path: Path, kind: EventDefinition['kind']): EventDefinition | undefined => {
    const def = events.get(name);
    if (!def) {
      problems.push({ path, message: `unknown event "${name}" (known: ${[...events.keys()].join(', ')})` });
      return undefined;
    }
    if (def.kind !== kind) {
      problems.push({ path, message: `event "${name}" is a ${def.kind} event; ${kind === 'changed' ? 'a block emits a changed event (its deletes emit onDelete)' : 'onDelete names a deleted event'}` });
    }
    entities.add(def.entity);
    return def;
  };

  if (transform.mapping !== undefined) {
    const code: CodeMapping | undefined = CODE_MAPPINGS.get(transform.mapping);
    if (!code) {
      problems.push({ path: ['mapping'], message: `unknown code mapping "${transform.mapping}" (registered: ${[...CODE_MAPPINGS.keys()].join(', ')})` });
    } else {
      if (code.format !== transform.format) {
        problems.push({ path: ['format'], message: `code mapping "${code.name}" reads ${code.format}, not ${transform.format}` });
      }
      const options = code.options.safeParse(transform.options ?? {});
      if (!options.success) {
        for (const issue of options.error.issues) {
          problems.push({ path: ['options', ...issue.path.filter((p): p is string | number => typeof p !== 'symbol')], message: `option of ${code.name}: ${issue.message}` });
        }
      } else {
        for (const name of code.reads(options.data)) column(name, ['mapping']);
      }
      for (const name of code.events) {
        const def = events.get(name);
        if (!def) problems.push({ path: ['mapping'], message: `code mapping "${code.name}" emits ${name}, which is not in the event catalog` });
        else entities.add(def.entity);
      }
      // The code mappings key their entities by `id`.
      for (const name of code.events) {
        const key = events.get(name)?.key ?? ['id'];
        if (key.join() !== 'id') problems.push({ path: ['mapping'], message: `code mapping "${code.name}" keys ${name} by id, the catalog by (${key.join(', ')})` });
      }
    }
  }

  (transform.events ?? []).forEach((block, j) => {
    const at = (...rest: Path): Path => ['events', j, ...rest];
    const def = useEvent(block.event, at('event'), 'changed');
    block.key.forEach((k, n) => column(k.column, at('key', ...(block.key.length > 1 ? [n] : []))));
    if (def) {
      // entityKey must name the entity's key fields, so ids from every source of the entity meet.
      const names = block.key.map((k) => k.name).join(', ');
      const expected = (def.key ?? ['id']).join(', ');
      if (names !== expected) {
        const hint = block.key.length === 1 && expected.split(', ').length === 1 ? ` (write key: { ${expected}: ${block.key[0]!.column} })` : '';
        problems.push({ path: at('key'), message: `entity "${def.entity}" is keyed by (${expected}); this block gives (${names})${hint}` });
      }
      const deleted = deletedEventOf(block, def, events);
      if (typeof deleted === 'string') problems.push({ path: at(block.onDelete !== undefined ? 'onDelete' : 'event'), message: deleted });
      else if (deleted) {
        if (deleted.kind !== 'deleted') problems.push({ path: at('onDelete'), message: `event "${deleted.name}" is a ${deleted.kind} event, onDelete names a deleted event` });
        entities.add(deleted.entity);
      }
    }
    for (const [field, f] of Object.entries(block.fields)) {
      const spec = def?.fields[field];
      if (def && !spec) {
        problems.push({ path: at('fields', field), message: `unknown field "${field}" of event ${def.name} (its fields: ${Object.keys(def.fields).join(', ') || 'none'})` });
      }
      let kind = column(f.column, at('fields', field, 'column'));
      f.convert.forEach((c, n) => {
        if (!kind) return;
        const next = compileConversion(c).kind(kind);
        if (typeof next === 'string') {
          problems.push({ path: at('fields', field, 'convert', n), message: `${inputWord} "${f.column}": ${next}` });
          kind = undefined;
        } else kind = next;
      });
      if (kind && spec) {
        const why = mismatch(kind, spec.type);
        if (why) {
          const after = f.convert.length > 0 ? ' after its conversions' : '';
          problems.push({ path: at('fields', field), message: `type mismatch: ${inputWord} "${f.column}"${after} ${why}` });
        }
      }
    }
    block.filter.forEach((filter, n) => {
      if (!Object.hasOwn(block.fields, filter.field)) {
        problems.push({ path: at('filter', n, 'field'), message: `filter on "${filter.field}", which this block does not map (it maps: ${Object.keys(block.fields).join(', ')})` });
        return;
      }
      const type = def?.fields[filter.field]?.type;
      if (filter.minRelativeChange !== undefined && type !== undefined && !(typeof type === 'object' || ['int', 'long', 'double'].includes(type))) {
        problems.push({ path: at('filter', n, 'minRelativeChange'), message: `minRelativeChange needs a numeric field; ${def!.name}.${filter.field} is ${typeName(type)}` });
      }
    });
  });

  if (transform.changeTypes) {
    const missing = [...entities].filter((e) => !transform.changeTypes!.includes(e));
    if (missing.length > 0) {
      problems.push({ path: ['changeTypes'], message: `its events are about ${missing.join(', ')}, which changeTypes does not list (${transform.changeTypes.join(', ')})` });
    }
  }
  return problems;
}

/** The change types a transform feeds: its `changeTypes`, or the entities of its events. */
export function changeTypesOf(transform: TransformConfig, catalog: Catalog): string[] {
  if (transform.changeTypes) return transform.changeTypes;
  const events = byName(catalog);
  const names = transform.mapping !== undefined ? (CODE_MAPPINGS.get(transform.mapping)?.events ?? []) : (transform.events ?? []).map((b) => b.event);
  return [...new Set(names.map((n) => events.get(n)?.entity).filter((e): e is string => e !== undefined))];
}
