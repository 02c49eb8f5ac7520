import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../../core';
import { configSchema, crossReferenceIssues, SECRET_FIELDS, type BanyanConfig } from './schema';

type Env = Record<string, string | undefined>;
type Path = Array<string | number>;

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE_ENV_REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/;

/** Reads, interpolates and validates a YAML config file. Every problem is reported at once. */
export function loadConfigFile(file: string, env: Env = process.env): BanyanConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [{ path: '', message: `cannot read the file: ${(error as Error).message}` }]);
  }
  return parseConfig(text, file, env);
}

/**
 * Parses YAML text into a validated config. `${VAR}` and `${VAR:-default}` are replaced from `env`
 * in every string; secret fields must be such a reference, never a literal.
 */
export function parseConfig(text: string, where: string, env: Env = process.env): BanyanConfig {
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
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) issues.push(...parsed.error.issues.map((i) => toIssue(i, raw, doc, lines)));
  issues.push(...crossReferenceIssues(raw).map((i) => located(i.path, i.message, doc, lines)));
  if (issues.length > 0) throw new ConfigError(where, issues);
  const config = parsed.data as BanyanConfig;
  ORIGINS.set(config, { where, locate: (path) => located(path, '', doc, lines).path });
  return config;
}

/** Where a loaded config came from, so a problem found later (a missing table) names the line. */
const ORIGINS = new WeakMap<BanyanConfig, { where: string; locate: (path: Path) => string }>();

/**
 * A ConfigError for problems found after loading (checks against the databases), each at its path
 * with the line in the file the config was read from (just the path for a config built in code).
 */
export function configErrorAt(config: BanyanConfig, problems: Array<{ path: Path; message: string }>): ConfigError {
  const origin = ORIGINS.get(config);
  return new ConfigError(
    origin?.where ?? 'the configuration',
    problems.map((p) => ({ path: origin ? origin.locate(p.path) : formatPath(p.path), message: p.message })),
  );
}

/** `sources[1].table (line 17)`: a config path with its line, as configErrorAt writes it. */
export function configLocation(config: BanyanConfig, path: Path): string {
  return ORIGINS.get(config)?.locate(path) ?? formatPath(path);
}

function interpolate(value: unknown, path: Path, env: Env, issues: ConfigIssue[]): unknown {
  if (typeof value === 'string') {
    const key = path[path.length - 1];
    if (typeof key === 'string' && (SECRET_FIELDS as readonly string[]).includes(key) && !WHOLE_ENV_REF.test(value)) {
      issues.push({
        path: formatPath(path),
        message: `secrets come from the environment only: write "\${SOME_ENV_VAR}" here, not the value`,
      });
      return value;
    }
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
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  } else if (valueAt(raw, path) === undefined) {
    message = 'required';
  }
  return located(path, message, doc, lines);
}

function located(path: Path, message: string, doc: Document, lines: LineCounter): ConfigIssue {
  const line = lineOf(doc, path, lines);
  return { path: `${formatPath(path)}${line ? ` (line ${line})` : ''}`, message };
}

function valueAt(value: unknown, path: Path): unknown {
  return path.reduce<unknown>((v, p) => (v && typeof v === 'object' ? (v as Record<string | number, unknown>)[p] : undefined), value);
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
