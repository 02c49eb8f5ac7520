export { configErrorAt, configLocation } from './load';
export * from './primitives';
export * from './schema';

/** DI token for the parsed configuration (the runtime reads it as RuntimeConfig). */
export const Config = Symbol.for('banyan.Config');
