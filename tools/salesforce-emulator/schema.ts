/** Field types as `describe` names them. `address` is the read-only compound over its components. */
export type FieldType =
  | 'id'
  | 'string'
  | 'email'
  | 'phone'
  | 'url'
  | 'textarea'
  | 'date'
  | 'datetime'
  | 'boolean'
  | 'double'
  | 'int'
  | 'currency'
  | 'reference'
  | 'picklist'
  | 'address';

/** One field as configured; everything not given takes the value a plain custom field has. */
export interface FieldConfig {
  name: string;
  type: FieldType;
  label?: string;
  /** Maximum length of text fields. */
  length?: number;
  /** Required on create (describe: nillable false, createable). */
  required?: boolean;
  externalId?: boolean;
  unique?: boolean;
  createable?: boolean;
  updateable?: boolean;
  referenceTo?: string[];
  picklistValues?: string[];
}

/** A validation rule: when `failsWhen` holds for the record as it would be saved, the save fails. */
export interface ValidationRule {
  errorMessage: string;
  /** The field the error is shown on, if any. */
  field?: string;
  failsWhen(record: Readonly<Record<string, unknown>>): boolean;
}

export interface ObjectConfig {
  name: string;
  keyPrefix: string;
  label?: string;
  labelPlural?: string;
  fields: FieldConfig[];
  /** Compound address fields, e.g. `{ name: 'MailingAddress', prefix: 'Mailing' }` adds MailingStreet… */
  addresses?: { name: string; prefix: string }[];
  /** A person name (Salutation, FirstName, LastName) with the read-only compound `Name`, as on Contact. */
  personName?: boolean;
  validationRules?: ValidationRule[];
}

/** A field as the emulator uses it, with every describe property resolved. */
export interface FieldDef {
  name: string;
  label: string;
  type: FieldType;
  length: number;
  custom: boolean;
  createable: boolean;
  updateable: boolean;
  nillable: boolean;
  externalId: boolean;
  idLookup: boolean;
  unique: boolean;
  referenceTo: string[];
  picklistValues: string[];
  /** For a component of a compound field: the compound's name and the component's name in it. */
  compound?: { field: string; component: string };
  /** Computed fields are derived from others and never stored. */
  computed: boolean;
  /** Audit fields the platform sets; change events leave out `Id`, `IsDeleted` and `SystemModstamp`. */
  system: boolean;
}

export interface ObjectDef {
  name: string;
  label: string;
  labelPlural: string;
  keyPrefix: string;
  custom: boolean;
  fields: FieldDef[];
  validationRules: ValidationRule[];
  field(name: string): FieldDef | undefined;
}

const TEXT_LENGTH: Partial<Record<FieldType, number>> = {
  id: 18, reference: 18, string: 255, email: 80, phone: 40, url: 255, textarea: 255, picklist: 255,
};

const ADDRESS_COMPONENTS: { component: string; suffix: string; type: FieldType; length?: number }[] = [
  { component: 'Street', suffix: 'Street', type: 'textarea', length: 255 },
  { component: 'City', suffix: 'City', type: 'string', length: 40 },
  { component: 'State', suffix: 'State', type: 'string', length: 80 },
  { component: 'PostalCode', suffix: 'PostalCode', type: 'string', length: 20 },
  { component: 'Country', suffix: 'Country', type: 'string', length: 80 },
  { component: 'Latitude', suffix: 'Latitude', type: 'double' },
  { component: 'Longitude', suffix: 'Longitude', type: 'double' },
  { component: 'GeocodeAccuracy', suffix: 'GeocodeAccuracy', type: 'picklist', length: 40 },
];

function labelOf(name: string): string {
  return name.replace(/__c$/, '').replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2');
}

function resolveField(cfg: FieldConfig, extra: Partial<FieldDef> = {}): FieldDef {
  const readOnly = cfg.type === 'id' || cfg.type === 'address';
  return {
    name: cfg.name,
    label: cfg.label ?? labelOf(cfg.name),
    type: cfg.type,
    length: cfg.length ?? TEXT_LENGTH[cfg.type] ?? 0,
    custom: cfg.name.endsWith('__c'),
    createable: cfg.createable ?? !readOnly,
    updateable: cfg.updateable ?? !readOnly,
    nillable: !cfg.required && cfg.type !== 'id' && cfg.type !== 'boolean',
    externalId: cfg.externalId ?? false,
    idLookup: cfg.type === 'id' || (cfg.externalId ?? false),
    unique: cfg.unique ?? false,
    referenceTo: cfg.referenceTo ?? [],
    picklistValues: cfg.picklistValues ?? [],
    computed: false,
    system: false,
    ...extra,
  };
}

const systemField = (name: string, type: FieldType, referenceTo: string[] = []): FieldDef =>
  resolveField({ name, type, createable: false, updateable: false, referenceTo }, { system: true, nillable: false });

/** Builds the resolved object definition: system fields first, then configured, person name and address fields. */
export function defineObject(cfg: ObjectConfig): ObjectDef {
  const fields: FieldDef[] = [
    systemField('Id', 'id'),
    systemField('IsDeleted', 'boolean'),
  ];
  if (cfg.personName) {
    fields.push(
      resolveField({ name: 'Salutation', type: 'picklist', length: 40, picklistValues: ['Mr.', 'Ms.', 'Mrs.', 'Dr.', 'Prof.'] }, { compound: { field: 'Name', component: 'Salutation' } }),
      resolveField({ name: 'FirstName', type: 'string', length: 40 }, { compound: { field: 'Name', component: 'FirstName' } }),
      resolveField({ name: 'LastName', type: 'string', length: 80, required: true }, { compound: { field: 'Name', component: 'LastName' } }),
      resolveField({ name: 'Name', type: 'string', length: 121, label: 'Full Name', createable: false, updateable: false }, { computed: true }),
    );
  }
  fields.push(...cfg.fields.map((f) => resolveField(f)));
  for (const address of cfg.addresses ?? []) {
    for (const part of ADDRESS_COMPONENTS) {
      fields.push(resolveField(
        { name: address.prefix + part.suffix, type: part.type, ...(part.length ? { length: part.length } : {}) },
        { compound: { field: address.name, component: part.component } },
      ));
    }
    fields.push(resolveField({ name: address.name, type: 'address' }, { computed: true }));
  }
  fields.push(
    systemField('CreatedDate', 'datetime'),
    systemField('CreatedById', 'reference', ['User']),
    systemField('LastModifiedDate', 'datetime'),
    systemField('LastModifiedById', 'reference', ['User']),
    systemField('SystemModstamp', 'datetime'),
  );
  const byLowerName = new Map(fields.map((f) => [f.name.toLowerCase(), f]));
  if (byLowerName.size !== fields.length) throw new Error(`object ${cfg.name} defines a field twice`);
  return {
    name: cfg.name,
    label: cfg.label ?? labelOf(cfg.name),
    labelPlural: cfg.labelPlural ?? `${cfg.label ?? labelOf(cfg.name)}s`,
    keyPrefix: cfg.keyPrefix,
    custom: cfg.name.endsWith('__c'),
    fields,
    validationRules: cfg.validationRules ?? [],
    field: (name) => byLowerName.get(name.toLowerCase()),
  };
}

/** Contact and Account as Banyan uses them, each with the `Banyan_Id__c` external id. */
export const STANDARD_OBJECTS: ObjectConfig[] = [
  {
    name: 'Account',
    keyPrefix: '001',
    fields: [
      { name: 'Name', type: 'string', label: 'Account Name', required: true },
      { name: 'Phone', type: 'phone' },
      { name: 'Website', type: 'url' },
      { name: 'Industry', type: 'picklist', length: 255, picklistValues: ['Agriculture', 'Banking', 'Education', 'Energy', 'Retail', 'Technology'] },
      { name: 'AnnualRevenue', type: 'currency' },
      { name: 'NumberOfEmployees', type: 'int' },
      { name: 'Banyan_Id__c', type: 'string', label: 'Banyan Id', length: 64, externalId: true, unique: true },
    ],
    addresses: [{ name: 'BillingAddress', prefix: 'Billing' }],
  },
  {
    name: 'Contact',
    keyPrefix: '003',
    personName: true,
    fields: [
      { name: 'AccountId', type: 'reference', label: 'Account ID', referenceTo: ['Account'] },
      { name: 'Email', type: 'email' },
      { name: 'Phone', type: 'phone', label: 'Business Phone' },
      { name: 'Birthdate', type: 'date' },
      { name: 'HasOptedOutOfEmail', type: 'boolean', label: 'Email Opt Out' },
      // A long text area, as on a real org's Contact: 32,000 characters.
      { name: 'Description', type: 'textarea', label: 'Contact Description', length: 32000 },
      { name: 'Banyan_Id__c', type: 'string', label: 'Banyan Id', length: 64, externalId: true, unique: true },
    ],
    addresses: [{ name: 'MailingAddress', prefix: 'Mailing' }],
  },
];

export class Schema {
  private readonly byLowerName = new Map<string, ObjectDef>();

  constructor(configs: ObjectConfig[]) {
    for (const cfg of configs) {
      const def = defineObject(cfg);
      if (this.byLowerName.has(def.name.toLowerCase())) throw new Error(`object ${def.name} is defined twice`);
      if (this.byPrefix(def.keyPrefix)) throw new Error(`key prefix ${def.keyPrefix} of ${def.name} is taken`);
      this.byLowerName.set(def.name.toLowerCase(), def);
    }
  }

  get objects(): ObjectDef[] {
    return [...this.byLowerName.values()];
  }

  object(name: string): ObjectDef | undefined {
    return this.byLowerName.get(name.toLowerCase());
  }

  byPrefix(prefix: string): ObjectDef | undefined {
    return this.objects.find((o) => o.keyPrefix === prefix);
  }
}

/** `Foo__c` → `Foo__ChangeEvent`, `Contact` → `ContactChangeEvent`, as CDC names its channels. */
export function changeEventName(objectName: string): string {
  return objectName.endsWith('__c') ? `${objectName.slice(0, -1)}ChangeEvent` : `${objectName}ChangeEvent`;
}
