import type { ConversionConfig } from '../config';
import { decimalText, normalize, parseDecimal, shift, type Decimal } from './decimal';
import { show, ValueError, type ValueKind } from './types';

/**
 * One value conversion of a declarative mapping, compiled. `inverse` is how the exporter will turn
 * an event's value back into the column's: present only where the conversion is invertible (an
 * injective enum map, a unit change); trim and case changes forget what they removed.
 */
export interface Conversion {
  name: string;
  apply(value: unknown): unknown;
  /** What values of `kind` become, or why the conversion cannot take them (a string for the error). */
  kind(kind: ValueKind): ValueKind | string;
  inverse?: (value: unknown) => unknown;
}

/** The text an enum map looks a value up by: strings as they are, numbers and booleans as written. */
function mapKey(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return show(value);
}

const TEXTUAL = new Set<ValueKind['type']>(['string', 'uuid', 'any']);

function textual(name: string, f: (s: string) => string): Conversion {
  return {
    name,
    apply(value) {
      if (value === null || value === undefined) return value;
      if (typeof value !== 'string') throw new ValueError('TYPE_MISMATCH', `${name} takes text, got ${show(value)}`);
      return f(value);
    },
    kind: (k) => (TEXTUAL.has(k.type) ? (k.type === 'any' ? k : { type: 'string' }) : `${name} takes text, the column is ${k.type}`),
  };
}

function unitChange(name: 'multiply' | 'divide', exponent: number): Conversion {
  const n = name === 'multiply' ? exponent : -exponent;
  const by = (e: number, tidy: (d: Decimal) => Decimal) => (value: unknown) => {
    if (value === null || value === undefined) return value;
    const d = typeof value === 'boolean' ? undefined : parseDecimal(value);
    if (!d) throw new ValueError('TYPE_MISMATCH', `${name} takes a number, got ${show(value)}`);
    return decimalText(tidy(shift(d, e)));
  };
  return {
    name: `${name} by 10^${exponent}`,
    apply: by(n, (d) => d),
    // Written back without trailing zeros (1200 cents → "12", not "12.00"): an integer column takes
    // it, and a decimal column's scale pads it again.
    inverse: by(-n, normalize),
    kind(k) {
      switch (k.type) {
        case 'any':
        case 'double':
        case 'float':
          // A double's digits are only known per value: the result is checked against the field then.
          return { type: 'any' };
        case 'int':
        case 'long':
        case 'decimal': {
          const precision = k.type === 'decimal' ? k.precision : k.type === 'int' ? 10 : 19;
          const scale = k.type === 'decimal' ? k.scale : 0;
          const newScale = Math.max(scale - n, 0);
          const whole = Math.max(precision - scale + n, 1);
          return { type: 'decimal', precision: whole + newScale, scale: newScale, ...(k.type !== 'decimal' || k.wholeDigitsPerValue ? { wholeDigitsPerValue: true } : {}) };
        }
        default:
          return `${name} takes a number, the column is ${k.type}`;
      }
    },
  };
}

function enumMap(map: Record<string, string | number | boolean | null>, unmapped: 'dead-letter' | 'pass'): Conversion {
  const forward = new Map(Object.entries(map));
  const values = [...forward.values()].map(mapKey);
  const injective = new Set(values).size === values.length;
  const backward = new Map([...forward].map(([k, v]) => [mapKey(v), k]));
  const lookup = (table: Map<string, unknown>, direction: string) => (value: unknown) => {
    if (value === null || value === undefined) return value;
    const key = mapKey(value);
    if (table.has(key)) return table.get(key);
    if (unmapped === 'pass') return value;
    throw new ValueError('UNMAPPED_VALUE', `${show(value)} is not in the enum map${direction} (${[...table.keys()].map((k) => JSON.stringify(k)).join(', ')})`);
  };
  const all = [...forward.values()];
  const resultKind: ValueKind =
    unmapped === 'dead-letter' && all.every((v) => typeof v === 'string' || v === null) ? { type: 'string' } : { type: 'any' };
  return {
    name: 'map',
    apply: lookup(forward, ''),
    ...(injective ? { inverse: lookup(backward, ' (reversed)') } : {}),
    kind: () => resultKind,
  };
}

export function compileConversion(c: ConversionConfig): Conversion {
  if (c === 'trim') return textual('trim', (s) => s.trim());
  if (c === 'lower') return textual('lower', (s) => s.toLowerCase());
  if (c === 'upper') return textual('upper', (s) => s.toUpperCase());
  if ('map' in c) return enumMap(c.map, c.unmapped);
  if ('multiply' in c) return unitChange('multiply', c.multiply);
  return unitChange('divide', c.divide);
}

/** A chain of conversions is invertible when every one of them is; its inverse runs them backwards. */
export function inverseOf(chain: Conversion[]): ((value: unknown) => unknown) | undefined {
  if (!chain.every((c) => c.inverse)) return undefined;
  const reversed = [...chain].reverse();
  return (value) => reversed.reduce((v, c) => c.inverse!(v), value);
}
