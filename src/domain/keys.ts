/**
 * An entity's id as text, from its key fields, and back. A simple key's id is its value as it is.
 * A composite key's id is its parts in key order joined by "/", each part with "%" written "%25"
 * and "/" written "%2F" (so a part may hold either): `order_id=7, line_no=2` → `7/2`, and
 * `a/b`, `c` → `a%2Fb/c`. The rule is reversible, so a sink can rebuild the key from the id.
 */
export function entityIdOf(keyFields: readonly string[], entityKey: Record<string, string>): string {
  if (keyFields.length === 1) return entityKey[keyFields[0]!]!;
  return keyFields.map((field) => entityKey[field]!.replace(/%/g, '%25').replace(/\//g, '%2F')).join('/');
}

/** The key fields by name from an entity id made by entityIdOf; throws when the id has the wrong number of parts. */
export function entityKeyOf(keyFields: readonly string[], entityId: string): Record<string, string> {
  if (keyFields.length === 1) return { [keyFields[0]!]: entityId };
  const parts = entityId.split('/');
  if (parts.length !== keyFields.length) {
    throw new Error(`entity id "${entityId}" has ${parts.length} part(s), the key (${keyFields.join(', ')}) has ${keyFields.length}`);
  }
  return Object.fromEntries(keyFields.map((field, i) => [field, parts[i]!.replace(/%2F/gi, '/').replace(/%25/g, '%')]));
}
