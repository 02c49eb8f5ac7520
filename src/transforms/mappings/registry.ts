import { legacyUsers } from '../legacy-users.transform';
import { salesforceContact } from '../salesforce-contact.transform';
import type { CodeMapping } from './code';

/** The code mappings, by the name a config's `mapping:` gives. A new one is a file and a line here. */
export const CODE_MAPPINGS: ReadonlyMap<string, CodeMapping> = new Map<string, CodeMapping>(
  ([legacyUsers, salesforceContact] as CodeMapping[]).map((m) => [m.name, m]),
);
