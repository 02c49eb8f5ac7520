// What domain services, mappings, the transform runner and the exporters use of src/domain.
export * from './event';
export * from './types';
export { BUILTIN_EVENTS, EventCatalog, builtinCatalog, type TopicSchemas } from './catalog';
export { buildCatalog, eventConfigSchema, eventDefinition, eventFieldSchema, eventsSectionSchema, type EventConfig, type EventsConfig } from './config';
export { NAMESPACE, avroFieldType, domainAvroType, eventRecordSchema, keySchema, valueSchema, type AvroSchema } from './avro';
export { checkEvent, fromAvroValue, toAvroValue } from './codec';
export { entityIdOf, entityKeyOf } from './keys';
export { DomainHeaders, correlationId, eventId, eventRecords } from './records';
export { registerBackward, registerDomainSchemas, schemaById, setBackward, SchemaRegistrationError, type RegisteredTopic, type RegistryOptions } from './registry';
export { DomainDecoder } from './decoder';
export { createPublisher, type Publisher } from './publish';
export { subscribe, type EventContext, type EventHandler, type SubscribeOptions, type Subscription, type SubscriptionConfig } from './subscribe';
export { backwardProblem, publishedSchemas } from './compatibility';
export { asyncApiDocument, asyncApiYaml } from './asyncapi';
export { bytesToDecimal, dateToDays, daysToDate, decimalToUnscaled, typeName, valueProblem } from './values';
