// Entry of the producer thread: the thread does not inherit tsx from its parent, so it registers
// it before loading the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./producer-worker.ts');
