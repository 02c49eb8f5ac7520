import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../../core';
import { SECRET_FIELDS } from './primitives';

type Env = Record<string, string | undefined>;
type Path = Array<string | number>;

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE_ENV_REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/;

/** What a configuration file is checked against: its schema and the checks between its sections. */
export interface ConfigSpec<T> {
  schema: z.ZodType<T>;
  crossReferences(raw: unknown): Array<{ path: Path; message: string }>;
}

/** Reads, interpolates and validates a YAML config file. Every problem is reported at once. */
export function loadConfigFileWith<T>(spec: ConfigSpec<T>, file: string, env: Env = process.env): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [{ path: '', message: `cannot read the file: ${(error as Error).message}` }]);
  }
  return parseConfigWith(spec, text, file, env);
}

/**
 * Parses YAML text into a validated config. `${VAR}` and `${VAR:-default}` are replaced from `env`
 * in every string; secret fields must be such a reference, never a literal.
 */
export function parseConfigWith<T>(spec: ConfigSpec<T>, text: string, where: string, env: Env = process.env): T {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      where,
      doc.errors.map((e) => {
        const at = e.linePos?.[0];
        const message = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
        return { path: at ? `line ${at.line}, column ${at.col}` : '', message };
      }),
    );
  }
  const issues: ConfigIssue[] = [];
  const raw = interpolate(doc.toJS() ?? {}, [], env, issues);
  const parsed = spec.schema.safeParse(raw, { reportInput: true, error: expectation });
  if (!parsed.success) issues.push(...parsed.error.issues.map((i) => toIssue(i, raw, doc, lines)));
  issues.push(...spec.crossReferences(raw).map((i) => located(i.path, i.message, doc, lines)));
  if (issues.length > 0) throw new ConfigError(where, issues);
  const config = parsed.data as T;
  ORIGINS.set(config as object, { where, locate: (path) => located(path, '', doc, lines).path });
  return config;
}

/** Where a loaded config came from, so a problem found later (a missing table) names the line. */
const ORIGINS = new WeakMap<object, { where: string; locate: (path: Path) => string }>();

/**
 * A ConfigError for problems found after loading (checks against the databases), each at its path
 * with the line in the file the config was read from (just the path for a config built in code).
 */
export function configErrorAt(config: object, problems: Array<{ path: Path; message: string }>): ConfigError {
  return new ConfigError(
    ORIGINS.get(config)?.where ?? 'the configuration',
    problems.map((p) => ({ path: configLocation(config, p.path), message: p.message })),
  );
}

/** `sources[1].table (line 17)`: a config path with its line, as configErrorAt writes it. */
export function configLocation(config: object, path: Path): string {
  return ORIGINS.get(config)?.locate(path) ?? formatPath(path);
}

function interpolate(value: unknown, path: Path, env: Env, issues: ConfigIssue[]): unknown {
  const key = path[path.length - 1];
  const scalar = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
  if (typeof key === 'string' && (SECRET_FIELDS as readonly string[]).includes(key) && scalar && !WHOLE_ENV_REF.test(String(value))) {
    issues.push({
      path: formatPath(path),
      message: `secrets come from the environment only: write "\${SOME_ENV_VAR}" here, not the value`,
    });
    return value;
  }
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_match, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      issues.push({ path: formatPath(path), message: `environment variable ${name} is not set` });
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, [...path, i], env, issues));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, [...path, k], env, issues)]));
  }
  return value;
}

function toIssue(issue: z.core.$ZodIssue, raw: unknown, doc: Document, lines: LineCounter): ConfigIssue {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    return located(path, message, doc, lines);
  }
  // What the user wrote there: the issue's own input is a later stage's (a coerced NaN, the whole
  // object of a discriminated union), except where the path goes past what was written (an item
  // of a list split from a string) or names a record's key.
  const written = issue.code === 'invalid_key' ? { state: 'found' as const, value: issue.input } : lookup(raw, path);
  if (written.state === 'missing') return located(path, 'required', doc, lines);
  const given = written.state === 'found' ? written.value : issue.input;
  const key = path.findLast((p) => typeof p === 'string');
  const secret = (SECRET_FIELDS as readonly unknown[]).includes(key);
  const message = given !== undefined && !secret ? `${issue.message}, got ${show(given)}` : issue.message;
  return located(path, message, doc, lines);
}

/**
 * zod's messages for what a field expects, in the words of the YAML file ("a list", "one of
 * a|b"); the value given is added by toIssue. Messages a schema sets itself take precedence.
 */
function expectation(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${alternatives([issue])}`;
    case 'invalid_value':
      return `expected ${alternatives([issue])}`;
    case 'invalid_union': {
      const options = (issue as { options?: unknown[] }).options;
      if (issue.discriminator && options) return `expected one of ${options.map(String).join('|')}`;
      // Each branch refused the value itself (not something inside it): name what each would take.
      const branches = issue.errors.map((b) => (b.length === 1 && b[0]!.path.length === 0 ? b[0]! : undefined));
      if (branches.length === 0 || branches.some((b) => b === undefined || !['invalid_type', 'invalid_value'].includes(b.code))) {
        return undefined;
      }
      return `expected ${alternatives(branches as z.core.$ZodIssue[])}`;
    }
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const side = issue.code === 'too_small' ? 'at least' : 'at most';
      if (issue.origin === 'string') return issue.code === 'too_small' && Number(bound) === 1 ? 'must not be empty' : `expected ${side} ${bound} characters`;
      if (issue.origin === 'array') return `expected ${side} ${bound} item${Number(bound) === 1 ? '' : 's'}`;
      const op = issue.code === 'too_small' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
      return `expected a number ${op} ${bound}`;
    }
    case 'invalid_format':
      if (issue.format === 'url') return 'expected a URL';
      if (issue.format === 'regex') return `expected text matching ${(issue as { pattern?: string }).pattern}`;
      return `expected ${issue.format}`;
    case 'invalid_key':
      return `invalid name: ${issue.issues[0]?.message ?? 'not allowed here'}`;
    default:
      return undefined;
  }
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  object: 'a mapping',
  array: 'a list',
};

/** "a string or a list", "one of mssql|postgres", "one of true|false" (a boolean is one of two words). */
function alternatives(issues: Array<Pick<z.core.$ZodIssue, 'code'> & { expected?: string; values?: readonly unknown[] }>): string {
  const types: string[] = [];
  const literals: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'invalid_value') literals.push(...(issue.values ?? []).map(String));
    else if (issue.expected === 'boolean') literals.push('true', 'false');
    else types.push(TYPE_WORDS[issue.expected ?? ''] ?? String(issue.expected));
  }
  const distinct = [...new Set(literals)];
  const words = [...new Set(types)];
  if (distinct.length > 0) words.push(distinct.length === 1 ? distinct[0]! : `one of ${distinct.join('|')}`);
  return words.join(' or ');
}

/** A value as the user wrote it: strings quoted (and cut when long), lists and mappings by name. */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (Array.isArray(value)) return 'a list';
  if (value !== null && typeof value === 'object') return 'a mapping';
  return String(value);
}

/** `missing`: a mapping along the path lacks the key; `beyond`: the path goes into a scalar. */
function lookup(value: unknown, path: Path): { state: 'found' | 'missing' | 'beyond'; value?: unknown } {
  let current = value;
  for (const p of path) {
    if (!current || typeof current !== 'object') return { state: 'beyond' };
    if (!Object.hasOwn(current, p)) return { state: 'missing' };
    current = (current as Record<string | number, unknown>)[p];
  }
  return { state: 'found', value: current };
}

function located(path: Path, message: string, doc: Document, lines: LineCounter): ConfigIssue {
  const line = lineOf(doc, path, lines);
  return { path: `${formatPath(path)}${line ? ` (line ${line})` : ''}`, message };
}

/** The line of the deepest YAML node that exists along `path`, so a person can find it. */
function lineOf(doc: Document, path: Path, lines: LineCounter): number | undefined {
  for (let n = path.length; n > 0; n--) {
    const node = doc.getIn(path.slice(0, n), true);
    if (node && (isScalar(node) || isMap(node) || isSeq(node)) && node.range) {
      return lines.linePos(node.range[0]).line;
    }
  }
  return undefined;
}

export function formatPath(path: Path): string {
  return path.reduce<string>((out, p) => (typeof p === 'number' ? `${out}[${p}]` : out ? `${out}.${p}` : p), '');
}
