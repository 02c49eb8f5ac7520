export * from './load';
export * from './schema';

/** DI token for the parsed BanyanConfig. */
export const Config = Symbol.for('banyan.Config');
