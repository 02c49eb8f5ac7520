import { readFile, rename, writeFile } from 'node:fs/promises';
import type { ChangeEventLogSnapshot } from './cdc.js';
import type { ChannelsSnapshot } from './channels.js';
import type { Org } from './org.js';
import type { StoreSnapshot } from './store.js';

interface StateFile {
  format: 1;
  savedAt: string;
  records: StoreSnapshot;
  changeEvents: ChangeEventLogSnapshot;
  apiUsage: { used: number; max: number };
  /** Absent in files written before custom channels existed. */
  channels?: ChannelsSnapshot;
}

/** Writes records, retained change events and API usage; via a temporary file so a crash never leaves half a file. */
export async function saveState(org: Org, file: string): Promise<void> {
  const state: StateFile = {
    format: 1,
    savedAt: new Date(org.clock.now()).toISOString(),
    records: org.store.snapshot(),
    changeEvents: org.events.snapshot(),
    apiUsage: org.usage.current(),
    channels: org.channels.snapshot(),
  };
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, JSON.stringify(state, (_key, value: unknown) => (typeof value === 'bigint' ? { $bigint: String(value) } : value)));
  await rename(temporary, file);
}

/** Loads a saved state: false when the file does not exist yet, `no-channels` when it predates custom channels. */
export async function loadState(org: Org, file: string): Promise<boolean | 'no-channels'> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  // Commit numbers are bigints, saved as `{ "$bigint": "…" }` so that none is rounded.
  const state = JSON.parse(text, (_key, value: unknown) => (isSavedBigint(value) ? BigInt(value.$bigint) : value)) as Partial<StateFile>;
  if (state.format !== 1 || !state.records || !state.changeEvents || !state.apiUsage) {
    throw new Error(`${file} is not a Salesforce emulator state file (format 1)`);
  }
  org.store.restore(state.records);
  org.events.restore(state.changeEvents);
  org.usage.set(state.apiUsage);
  if (!state.channels) return 'no-channels';
  org.channels.restore(state.channels);
  return true;
}

function isSavedBigint(value: unknown): value is { $bigint: string } {
  return typeof value === 'object' && value !== null && Object.keys(value).length === 1 && typeof (value as { $bigint?: unknown }).$bigint === 'string';
}
