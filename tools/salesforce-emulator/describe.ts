import type { FieldDef, FieldType, ObjectDef, Schema } from './schema.js';

const SOAP_TYPES: Record<FieldType, string> = {
  id: 'tns:ID', reference: 'tns:ID', string: 'xsd:string', email: 'xsd:string', phone: 'xsd:string',
  url: 'xsd:string', textarea: 'xsd:string', picklist: 'xsd:string', date: 'xsd:date',
  datetime: 'xsd:dateTime', boolean: 'xsd:boolean', double: 'xsd:double', currency: 'xsd:double',
  int: 'xsd:int', address: 'urn:address',
};

function objectUrls(def: ObjectDef, base: string): Record<string, string> {
  return {
    sobject: `${base}/sobjects/${def.name}`,
    describe: `${base}/sobjects/${def.name}/describe`,
    rowTemplate: `${base}/sobjects/${def.name}/{ID}`,
  };
}

function objectSummary(def: ObjectDef, base: string): Record<string, unknown> {
  return {
    name: def.name,
    label: def.label,
    labelPlural: def.labelPlural,
    keyPrefix: def.keyPrefix,
    custom: def.custom,
    activateable: false,
    createable: true,
    updateable: true,
    deletable: true,
    undeletable: true,
    queryable: true,
    retrieveable: true,
    searchable: true,
    triggerable: true,
    replicateable: true,
    layoutable: true,
    mergeable: false,
    customSetting: false,
    deprecatedAndHidden: false,
    feedEnabled: false,
    urls: objectUrls(def, base),
  };
}

function describeField(field: FieldDef): Record<string, unknown> {
  const numeric = field.type === 'double' || field.type === 'currency' || field.type === 'int';
  return {
    name: field.name,
    label: field.label,
    type: field.type,
    soapType: SOAP_TYPES[field.type],
    length: field.length,
    byteLength: field.length * 3,
    digits: field.type === 'int' ? 9 : 0,
    precision: numeric && field.type !== 'int' ? 18 : 0,
    scale: field.type === 'currency' ? 2 : 0,
    custom: field.custom,
    createable: field.createable,
    updateable: field.updateable,
    nillable: field.nillable,
    defaultedOnCreate: field.system || field.type === 'boolean',
    externalId: field.externalId,
    idLookup: field.idLookup,
    unique: field.unique,
    caseSensitive: false,
    calculated: field.computed,
    autoNumber: false,
    filterable: field.type !== 'address' && field.type !== 'textarea',
    sortable: field.type !== 'address' && field.type !== 'textarea',
    groupable: field.type !== 'address',
    nameField: field.name === 'Name',
    compoundFieldName: field.compound?.field ?? null,
    referenceTo: field.referenceTo,
    relationshipName: field.type !== 'reference' ? null : field.custom ? field.name.replace(/__c$/, '__r') : field.name.replace(/Id$/, ''),
    picklistValues: field.picklistValues.map((value) => ({ active: true, defaultValue: false, label: value, validFor: null, value })),
    restrictedPicklist: false,
    deprecatedAndHidden: false,
    htmlFormatted: false,
    permissionable: !field.system && field.nillable,
  };
}

export function describeGlobal(schema: Schema, base: string): Record<string, unknown> {
  return { encoding: 'UTF-8', maxBatchSize: 200, sobjects: schema.objects.map((o) => objectSummary(o, base)) };
}

export function describeSObject(def: ObjectDef, base: string): Record<string, unknown> {
  return {
    ...objectSummary(def, base),
    fields: def.fields.map(describeField),
    childRelationships: [],
    recordTypeInfos: [],
    supportedScopes: [{ label: 'All', name: 'everything' }],
  };
}

/** The `GET sobjects/{type}` answer: object summary plus recently viewed records (none here). */
export function sobjectBasicInfo(def: ObjectDef, base: string): Record<string, unknown> {
  return { objectDescribe: objectSummary(def, base), recentItems: [] };
}
