import type { ChannelConfig } from './channels.js';
import type { Org } from './org.js';
import { Transaction } from './store.js';

const ACCOUNTS = [
  { Name: 'Acme Corporation', Industry: 'Technology', Phone: '+1 415 555 0100', Banyan_Id__c: 'acct-1001', BillingStreet: '415 Mission Street', BillingCity: 'San Francisco', BillingState: 'CA', BillingPostalCode: '94105', BillingCountry: 'United States' },
  { Name: 'Globex Ltd', Industry: 'Energy', Phone: '+44 20 7946 0000', Banyan_Id__c: 'acct-1002', BillingStreet: '1 Canada Square', BillingCity: 'London', BillingPostalCode: 'E14 5AB', BillingCountry: 'United Kingdom' },
  { Name: 'Initech GmbH', Industry: 'Banking', Banyan_Id__c: 'acct-1003', BillingStreet: 'Friedrichstraße 68', BillingCity: 'Berlin', BillingPostalCode: '10117', BillingCountry: 'Germany' },
];

const CONTACTS = [
  { account: 0, FirstName: 'Ada', LastName: 'Lovelace', Email: 'ada@acme.example', Phone: '+1 415 555 0101', Banyan_Id__c: 'user-2001', MailingStreet: '12 Market Street', MailingCity: 'San Francisco', MailingState: 'CA', MailingPostalCode: '94103', MailingCountry: 'United States' },
  { account: 0, FirstName: 'Grace', LastName: 'Hopper', Email: 'grace@acme.example', Banyan_Id__c: 'user-2002', MailingStreet: '99 Howard Street', MailingCity: 'San Francisco', MailingState: 'CA', MailingPostalCode: '94105', MailingCountry: 'United States' },
  { account: 1, FirstName: 'Alan', LastName: 'Turing', Email: 'alan@globex.example', Banyan_Id__c: 'user-2003', MailingStreet: '221B Baker Street', MailingCity: 'London', MailingPostalCode: 'NW1 6XE', MailingCountry: 'United Kingdom' },
  { account: 2, FirstName: 'Emmy', LastName: 'Noether', Email: 'emmy@initech.example', Banyan_Id__c: 'user-2004', MailingStreet: 'Unter den Linden 6', MailingCity: 'Berlin', MailingPostalCode: '10099', MailingCountry: 'Germany' },
  { account: 2, FirstName: 'Kurt', LastName: 'Gödel', Email: 'kurt@initech.example', MailingCity: 'Berlin', MailingCountry: 'Germany' },
];

/**
 * The `demo` seed's custom channel: Contact changes with the Contact's external id in every UPDATE
 * and DELETE event, which Banyan's Contact source subscribes to.
 */
export const DEMO_CHANNELS: ChannelConfig[] = [
  { fullName: 'BanyanContacts__chn', label: 'Banyan Contacts', members: [{ selectedEntity: 'ContactChangeEvent', enrichedFields: ['Banyan_Id__c'] }] },
];

/** The `demo` seed: accounts and contacts with addresses. Seed data predates any subscriber, so it publishes no change events. */
export function seedDemo(org: Org): void {
  const account = org.schema.object('Account');
  const contact = org.schema.object('Contact');
  if (!account || !contact) throw new Error('the demo seed needs the standard Account and Contact objects');
  const tx = new Transaction(org.clock.now());
  const accountIds = ACCOUNTS.map((a) => org.store.create(tx, account, a));
  for (const { account: index, ...fields } of CONTACTS) {
    org.store.create(tx, contact, { ...fields, AccountId: accountIds[index] });
  }
}
