import { ConfigError } from '../../core';
import type { EventDefinition } from '../../domain/event';
import { configErrorAt } from '../../runtime/config/load';
import type { TransformConfig } from '../config';
import type { CodeMapping } from './code';
import { compileConversion } from './conversions';
import { deletedEventOf, declarativeMapping } from './declarative';
import type { MappingFunction } from './events';
import { CODE_MAPPINGS } from './registry';
import { fieldTypeText, mismatch, type InputColumn, type ValueKind } from './types';
import { avroName } from './views';

type Path = Array<string | number>;
interface Problem {
  path: Path;
  message: string;
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
 * transforms feeding one entity with different key names. Throws one ConfigError naming each
 * problem's transform, field and line.
 */
export function validateTransforms(config: TransformsConfig, catalog: EventDefinition[], inputColumns?: Record<string, InputColumn[]>): void {
  const events = new Map(catalog.map((e) => [e.name, e]));
  const problems: Problem[] = [];
  const keyNames = new Map<string, { names: string; transform: string }>();
  (config.transforms ?? []).forEach((transform, i) => {
    const found = transformProblems(transform, events, inputColumns?.[transform.from]);
    problems.push(...found.problems.map((p) => ({ path: ['transforms', i, ...p.path], message: `transform "${transform.name}": ${p.message}` })));
    for (const [entity, names] of found.keys) {
      const seen = keyNames.get(entity);
      if (!seen) keyNames.set(entity, { names, transform: transform.name });
      else if (seen.names !== names) {
        problems.push({
          path: ['transforms', i, 'name'],
          message: `transform "${transform.name}": entity "${entity}" is keyed by (${names}) here but by (${seen.names}) in transform "${seen.transform}": one entity needs one key, or its ids will not meet`,
        });
      }
    }
  });
  if (problems.length > 0) throw configErrorAt(config, problems);
}

/**
 * The mapping function of one transform. Checks it against the catalog first (without the input's
 * columns, and without lines: validateTransforms is the check that names them).
 */
export function buildMapping(transform: TransformConfig, catalog: EventDefinition[]): MappingFunction {
  const events = new Map(catalog.map((e) => [e.name, e]));
  const { problems } = transformProblems(transform, events, undefined);
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
): { problems: Problem[]; keys: Map<string, string> } {
  const problems: Problem[] = [];
  const keys = new Map<string, string>();
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
      // The built-in code mappings key their entities by `id`.
      for (const name of code.events) {
        const def = events.get(name);
        if (def) keys.set(def.entity, 'id');
      }
    }
  }

  (transform.events ?? []).forEach((block, j) => {
    const at = (...rest: Path): Path => ['events', j, ...rest];
    const def = useEvent(block.event, at('event'), 'changed');
    block.key.forEach((k, n) => column(k.column, at('key', ...(block.key.length > 1 ? [n] : []))));
    if (def) {
      const names = block.key.map((k) => k.name).join(', ');
      const seen = keys.get(def.entity);
      if (seen !== undefined && seen !== names) {
        problems.push({ path: at('key'), message: `entity "${def.entity}" is keyed by (${names}) here but by (${seen}) in another block` });
      }
      keys.set(def.entity, names);
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
        problems.push({ path: at('filter', n, 'minRelativeChange'), message: `minRelativeChange needs a numeric field; ${def!.name}.${filter.field} is ${fieldTypeText(type)}` });
      }
    });
  });

  if (transform.changeTypes) {
    const missing = [...entities].filter((e) => !transform.changeTypes!.includes(e));
    if (missing.length > 0) {
      problems.push({ path: ['changeTypes'], message: `its events are about ${missing.join(', ')}, which changeTypes does not list (${transform.changeTypes.join(', ')})` });
    }
  }
  return { problems, keys };
}

/** The change types a transform feeds: its `changeTypes`, or the entities of its events. */
export function changeTypesOf(transform: TransformConfig, catalog: EventDefinition[]): string[] {
  if (transform.changeTypes) return transform.changeTypes;
  const events = new Map(catalog.map((e) => [e.name, e]));
  const names = transform.mapping !== undefined ? (CODE_MAPPINGS.get(transform.mapping)?.events ?? []) : (transform.events ?? []).map((b) => b.event);
  return [...new Set(names.map((n) => events.get(n)?.entity).filter((e): e is string => e !== undefined))];
}
