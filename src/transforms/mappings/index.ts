// Mappings: one decoded input record → canonical domain events. Pure functions; docs/mappings.md.
export { buildMapping, changeTypesOf, validateTransforms, type Catalog, type TransformsConfig } from './validate';
export { CODE_MAPPINGS } from './registry';
export type { CodeMapping } from './code';
export type { MappingFunction, MappingResult } from './events';
export { inverseOf, type Conversion } from './conversions';
export { legacyColumnsFromSchema, kindOfAvro, type InputColumn, type ValueKind } from './types';
export { avroName, type InputFormat } from './views';
export { reverseMapping, salesforceWriteMapping } from './reverse';
