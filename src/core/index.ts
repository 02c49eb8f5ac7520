// The contracts every stage depends on. No dependencies beyond the standard library.
export * from './envelope';
export * from './errors';
export * from './offset-store';
export * from './sink';
export * from './source';
export * from './transform';
export * from './health';
export * from './time';
export * from './values';
export * from './row-mapping';
