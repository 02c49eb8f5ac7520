import { randomBytes } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SUFFIX_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';
/** Salesforce ids: key prefix (3), pod (2), reserved (1), counter (9). "Em" marks the emulator's pod. */
const POD = 'Em0';

/** The 3-character case-safe suffix that turns a 15-character id into its 18-character form. */
export function caseSafeSuffix(id15: string): string {
  let suffix = '';
  for (let chunk = 0; chunk < 3; chunk++) {
    let flags = 0;
    for (let i = 0; i < 5; i++) {
      const ch = id15.charAt(chunk * 5 + i);
      if (ch >= 'A' && ch <= 'Z') flags |= 1 << i;
    }
    suffix += SUFFIX_ALPHABET.charAt(flags);
  }
  return suffix;
}

export function to18(id15: string): string {
  return id15 + caseSafeSuffix(id15);
}

export function makeId(keyPrefix: string, counter: number): string {
  let digits = '';
  let n = counter;
  do {
    digits = BASE62.charAt(n % 62) + digits;
    n = Math.floor(n / 62);
  } while (n > 0);
  return to18(keyPrefix + POD + digits.padStart(9, '0'));
}

const ID_PATTERN = /^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$/;

/** The 18-character form of a 15- or 18-character id, or undefined when it is not shaped like an id. */
export function normalizeId(value: string): string | undefined {
  if (!ID_PATTERN.test(value)) return undefined;
  const id18 = to18(value.slice(0, 15));
  if (value.length === 18 && value.slice(15) !== id18.slice(15)) return undefined;
  return id18;
}

/** Random base62 text, for session tokens, client ids and transaction keys. */
export function randomBase62(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += BASE62.charAt(byte % 62);
  return out;
}
