/**
 * The README's first command, after the stack is up: Banyan's main job end to end on the local
 * stack: the whole bridge. It creates the demo legacy table (a `users` table with address
 * columns, the reference example), installs its changelog, moves the user and address change types
 * to `dual` (every side writes), runs `banyan run` as a user would (sources, transforms, the legacy
 * sink and the Salesforce sink), and while it runs changes a legacy row, a Salesforce Contact, and
 * publishes a domain service's UserChanged. It prints the canonical events that arrive in
 * domain.user and domain.address, read as a domain service reads them (the typed subscribe()
 * helper), then each change as each of the three systems holds it, once, and the echoes dropped.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import jsforce from 'jsforce';
import { loadEnvFile, STACK_ENV_FILE } from '../src/cli/context';
import { Databases } from '../src/clients/databases';
import { loadConfigFile } from '../src/config';
import { createPublisher, subscribe, type DomainEvent, type Subscription } from '../src/domain';
import { createKafka } from '../src/runtime/kafka';
import { createRootLogger } from '../src/runtime/logger';
import type { PipelineStatus } from '../src/runtime/pipeline';
import { formatStatus } from '../src/runtime/http-server';
import { catalogOf } from '../src/transforms/module';

loadEnvFile(STACK_ENV_FILE);
const config = loadConfigFile('banyan.yaml');
const databases = new Databases(config.databases);
const db = databases.get('legacy_pg');
const source = config.sources.find((s) => s.name === 'legacy-users');
if (!source?.topic) throw new Error('banyan.yaml must define the legacy-users source with a topic');
const status = `http://${config.http.host}:${config.http.port}`;

// The demo's own table. An older demo made it with one `name` column; it is made anew in this shape.
const shaped = await db.raw(`SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'first_name'`);
if (shaped.rows.length === 0) {
  await db.raw('DROP TABLE IF EXISTS public.users CASCADE');
  await db.raw('DROP TABLE IF EXISTS public.banyan_cl_users CASCADE');
}
await db.raw(`CREATE TABLE IF NOT EXISTS public.users (
  id integer PRIMARY KEY, first_name varchar(50), last_name varchar(50) NOT NULL, email varchar(200),
  street varchar(200), city varchar(100), postal_code varchar(20), state varchar(50), country char(2),
  credit_limit numeric(12,2), updated_at timestamp(3) NOT NULL DEFAULT now())`);
const { rows } = await db.raw('SELECT count(*)::int AS n FROM public.users');
if (rows[0].n === 0) {
  await db('public.users').insert([
    { id: 1, first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', street: '12 St James Sq', city: 'London', postal_code: 'SW1Y 4JH', country: 'GB', credit_limit: 5000 },
    { id: 2, first_name: 'Grace', last_name: 'Hopper', email: 'grace@example.com', street: '1 Navy Way', city: 'Arlington', postal_code: '22202', state: 'VA', country: 'US', credit_limit: 7500.5 },
  ]);
}

const cli = (args: string[]) => spawn('node', ['bin/banyan.mjs', ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
const step = (args: string[]) =>
  new Promise((resolve, reject) => cli(args).on('exit', (code) => (code === 0 ? resolve(code) : reject(new Error(`banyan ${args.join(' ')} exited ${code}`)))));
// The demo table exists now; its changelog and triggers come from `banyan migrate`, and doctor
// checks every connection and every source (table, primary key, changelog, triggers current).
console.log('\n== banyan migrate');
await step(['migrate']);
console.log('\n== banyan doctor');
await step(['doctor']);
// Both sides write users and addresses while the demo runs: the legacy sink writes the new
// system's changes back (in legacy-owned it would only report them). Moved once; a later demo finds them dual.
const listed = spawnSync('node', ['bin/banyan.mjs', 'changetypes', 'list', '--json'], { encoding: 'utf8' });
if (listed.status !== 0) throw new Error(`banyan changetypes list failed: ${listed.stderr}`);
for (const { type, state } of (JSON.parse(listed.stdout) as { changeTypes: Array<{ type: string; state: string }> }).changeTypes) {
  if ((type === 'user' || type === 'address') && state === 'legacy-owned') {
    console.log(`\n== banyan changetypes set ${type} dual`);
    await step(['changetypes', 'set', type, 'dual', '--expect', 'legacy-owned', '--why', 'demo: the new system writes users back']);
  }
}
console.log('\n== banyan changetypes list');
await step(['changetypes', 'list']);

// Salesforce's Ada Lovelace is the legacy user 1: her Contact's external id says so, as a migration
// team links the records before the bridge runs, so both sides' events meet on one entity.
const salesforce = new jsforce.Connection({ oauth2: { loginUrl: config.salesforce!.loginUrl, clientId: config.salesforce!.clientId, clientSecret: config.salesforce!.clientSecret }, version: '62.0' });
await salesforce.login(config.salesforce!.username!, config.salesforce!.password!);
const [contact] = (await salesforce.query<{ Id: string; Banyan_Id__c: string }>("SELECT Id, Banyan_Id__c FROM Contact WHERE Banyan_Id__c IN ('user-2001', '1')")).records;
if (!contact) throw new Error("the emulator's demo seed has no Contact for Ada Lovelace (Banyan_Id__c user-2001)");
if (contact.Banyan_Id__c !== '1') await salesforce.sobject('Contact').update({ Id: contact.Id, Banyan_Id__c: '1' });
contact.Banyan_Id__c = '1';

console.log('\n== banyan run (in the background): sources, transforms, the legacy sink and the Salesforce sink');
const banyan = cli(['run']);
// The demo must not leave `banyan run` behind, whatever happens below.
process.on('exit', () => banyan.kill('SIGKILL'));
const deadline = (what: string | (() => string), ms = 120_000) => {
  const at = Date.now() + ms;
  return () => {
    if (Date.now() > at) throw new Error(`the demo waited ${ms / 1000} s for ${typeof what === 'string' ? what : what()}, in vain`);
  };
};
// Wait until every pipeline runs (the status server of `banyan run`).
for (let ready = false, check = deadline('banyan run to be ready'); !ready; check()) {
  await new Promise((resolve) => setTimeout(resolve, 250));
  ready = await fetch(`${status}/readyz`).then((r) => r.ok, () => false);
}

// The bridge's first sync: every legacy user is a Contact in Salesforce before the changes below.
// A domain service changing user 2 presupposes user 2 in every system, and an upsert of one field
// cannot make a Contact (Salesforce requires LastName): an event that overtook the first sync
// would be dead-lettered with REQUIRED_FIELD_MISSING, as it should be.
const ids = (await db('public.users').select('id')).map((r: { id: number }) => String(r.id));
const synced = async () =>
  (await salesforce.query<{ Id: string }>(`SELECT Id FROM Contact WHERE Banyan_Id__c IN (${ids.map((id) => `'${id}'`).join(', ')})`)).records.length;
for (let check = deadline('the first sync of the legacy users to Salesforce'); (await synced()) < ids.length; check()) await new Promise((resolve) => setTimeout(resolve, 250));
console.log(`\n== first sync: the ${ids.length} legacy users are Contacts in Salesforce`);

// A domain service's view: every event of this run, decoded and typed. The topics keep earlier
// runs' events too; those committed before this run began are not shown.
const since = Date.now() - 1000;
const arrived: DomainEvent[] = [];
const options = { kafka: createKafka(config.kafka, createRootLogger('silent')), schemaRegistry: config.schemaRegistry, catalog: catalogOf(config) };
const subscriptions: Subscription[] = [];
for (const entity of ['user', 'address']) {
  const topic = `${config.kafka.topics.domainPrefix}.${entity}`;
  const groupId = `banyan-demo-${randomBytes(4).toString('hex')}`;
  subscriptions.push(
    await subscribe(options, topic, (event) => {
      if ((event as DomainEvent).sourceCommitTime >= since) arrived.push(event as DomainEvent);
    }, { groupId, fromBeginning: true }),
  );
}

console.log('\n== changes: in the legacy database, and in Salesforce');
const next = Number((await db.raw('SELECT coalesce(max(id), 0) + 1 AS n FROM public.users')).rows[0].n);
await db('public.users').insert({ id: next, first_name: 'Alan', last_name: 'Turing', email: 'alan@example.com', street: 'Bletchley Park', city: 'Milton Keynes', postal_code: 'MK3 6EB', country: 'GB', credit_limit: 1234.56 });
console.log(`legacy:     INSERT user ${next} (Alan Turing)            → UserChanged + AddressChanged`);
await db('public.users').where({ id: next }).update({ city: 'Manchester', postal_code: 'M13 9PL' });
console.log(`legacy:     UPDATE user ${next} city, postal_code        → AddressChanged`);
await db('public.users').where({ id: 2 }).update({ email: `grace.${Date.now()}@example.com`, credit_limit: 8000 });
console.log('legacy:     UPDATE user 2 email, credit_limit         → UserChanged (credit_limit is not mapped)');

// A change made in Salesforce by one of its users, and one made by Banyan itself (an echo).
// A city Ada's Contact does not hold yet: the legacy database outlives the emulator between runs,
// and the first sync may have brought back the city an earlier demo set (a same value is no change).
const [adaNow] = (await salesforce.query<{ MailingCity: string | null }>(`SELECT MailingCity FROM Contact WHERE Id = '${contact.Id}'`)).records;
const city = adaNow?.MailingCity === 'Oakland' ? 'Alameda' : 'Oakland';
await salesforce.sobject('Contact').update({ Id: contact.Id, Email: `ada.${Date.now()}@acme.example`, MailingCity: city });
console.log(`salesforce: UPDATE Contact ${contact.Id} Email, MailingCity → UserChanged + AddressChanged`);
const asBanyan = new jsforce.Connection({ instanceUrl: salesforce.instanceUrl, accessToken: salesforce.accessToken!, version: '62.0', callOptions: { client: config.originTag } });
await asBanyan.sobject('Contact').update({ Id: contact.Id, MailingCity: 'Berkeley' });
console.log(`salesforce: UPDATE Contact ${contact.Id} MailingCity as Banyan → an echo: no event`);

// A domain service changes user 2's email in the new system: the legacy sink writes it into the
// legacy row, tagged, and the changelog row that write makes comes back only as an echo.
const serviceEmail = `grace.${Date.now()}@new-system.example`;
const publisher = await createPublisher(options, `banyan-demo-service-${randomBytes(4).toString('hex')}`);
const causation = { topic: 'demo.user-service', partition: 0, offset: String(Date.now()) };
await publisher.publish([
  {
    eventId: randomUUID(),
    type: 'UserChanged',
    entity: 'user',
    entityId: '2',
    entityKey: { id: '2' },
    sourceCommitTime: Date.now(),
    origin: 'domain',
    causation,
    correlationId: randomUUID(),
    changedFields: ['email'],
    knownFields: ['email'],
    schemaVersion: 1,
    data: { firstName: null, lastName: null, email: serviceEmail },
  },
]);
await publisher.close();
console.log(`domain:     UserChanged user 2 email (a domain service) → the legacy row, once; its changelog row is an echo`);

// The events these changes must make, each seen once through subscribe() before the demo ends.
const expected = [
  ['UserChanged', String(next), 'legacy'],
  ['AddressChanged', String(next), 'legacy'],
  ['AddressChanged', String(next), 'legacy'],
  ['UserChanged', '2', 'legacy'],
  ['UserChanged', contact.Banyan_Id__c, 'salesforce'],
  ['AddressChanged', contact.Banyan_Id__c, 'salesforce'],
  ['UserChanged', '2', 'domain'],
];
const missing = () => {
  const left = arrived.map((e) => [e.type, e.entityId, e.origin].join(' '));
  return expected.map((e) => e.join(' ')).filter((e) => {
    const at = left.indexOf(e);
    if (at >= 0) left.splice(at, 1);
    return at < 0;
  });
};
for (let check = deadline(() => `the events of these changes: ${missing().join(', ')}`); missing().length > 0; check()) await new Promise((resolve) => setTimeout(resolve, 100));
// The way back: the service's email in the legacy row and in Salesforce; the legacy change in Salesforce.
const legacyEmail = async () => (await db('public.users').where({ id: 2 }).first()).email as string;
const writes = () => db('public.banyan_cl_users').where('origin', config.originTag).whereRaw(`after_image->>'email' = ?`, [serviceEmail]).count({ n: '*' });
for (let check = deadline('the legacy sink to write user 2'); (await legacyEmail()) !== serviceEmail; check()) await new Promise((resolve) => setTimeout(resolve, 100));
type DemoContact = { Id: string; FirstName: string | null; LastName: string; Email: string | null; MailingCity: string | null; Banyan_Id__c: string };
const contactOf = async (id: string) =>
  (await salesforce.query<DemoContact>(`SELECT Id, FirstName, LastName, Email, MailingCity, Banyan_Id__c FROM Contact WHERE Banyan_Id__c = '${id}'`)).records;
for (let check = deadline('the Salesforce sink to write user 2'); (await contactOf('2'))[0]?.Email !== serviceEmail; check()) await new Promise((resolve) => setTimeout(resolve, 100));
for (let check = deadline(`the Salesforce sink to write user ${next}`); (await contactOf(String(next)))[0]?.MailingCity !== 'Manchester'; check()) await new Promise((resolve) => setTimeout(resolve, 100));
const echoesNow = async () => {
  const s = (await (await fetch(`${status}/status`)).json()) as { transforms: PipelineStatus[] };
  return s.transforms.reduce((n, t) => n + Number((t.details.dropped as Record<string, number> | undefined)?.echo ?? 0), 0);
};
for (let check = deadline('the transforms to drop the sinks’ echoes'); (await echoesNow()) < 4; check()) await new Promise((resolve) => setTimeout(resolve, 100));
const statuses = (await (await fetch(`${status}/status`)).json()) as { sources: PipelineStatus[]; transforms: PipelineStatus[]; sinks: PipelineStatus[] };
for (const subscription of subscriptions) await subscription.stop();
banyan.kill('SIGTERM');
await new Promise((resolve) => banyan.once('exit', resolve));

console.log(`\n== ${arrived.length} domain events, read through subscribe() as a domain service reads them`);
for (const event of arrived.sort((a, b) => a.sourceCommitTime - b.sourceCommitTime)) {
  const data = Object.fromEntries(event.changedFields.map((f) => [f, event.data[f]]));
  console.log(`${event.type.padEnd(15)} ${`${event.entity} ${event.entityId}`.padEnd(18)} from ${event.origin.padEnd(10)} changed ${JSON.stringify(data)}`);
}
console.log('\n== what banyan run did (banyan status)');
console.log(formatStatus([...statuses.sources, ...statuses.transforms, ...statuses.sinks]));

// Each change, as each system holds it, once.
const row = async (id: number) => (await db('public.users').where({ id }).first()) as { first_name: string; last_name: string; email: string; city: string };
const eventsOf = (id: string, origin: string) => arrived.filter((e) => e.entityId === id && e.origin === origin).map((e) => e.type);
const once = (what: string, n: number) => {
  if (n !== 1) throw new Error(`${what}: ${n} times, not once`);
  return 'once';
};
console.log('\n== the whole bridge: each change in each system');
const alan = await row(next);
const alanContacts = await contactOf(String(next));
console.log(`a legacy change (INSERT user ${next}, then its city):`);
console.log(`  legacy database   user ${next}: ${alan.first_name} ${alan.last_name}, ${alan.email}, ${alan.city}`);
console.log(`  domain topics     ${eventsOf(String(next), 'legacy').join(', ')} (from legacy)`);
console.log(`  Salesforce        Contact ${alanContacts[0]?.Id}: ${alanContacts[0]?.FirstName} ${alanContacts[0]?.LastName}, ${alanContacts[0]?.Email}, ${alanContacts[0]?.MailingCity} (${once(`user ${next}'s Contact`, alanContacts.length)})`);
const ada = await row(Number(contact.Banyan_Id__c));
const [adaContact] = await contactOf(contact.Banyan_Id__c);
console.log(`a Salesforce change (Ada's Email, MailingCity):`);
console.log(`  Salesforce        Contact ${adaContact!.Id}: ${adaContact!.Email}, ${adaContact!.MailingCity} (the city the demo then wrote as Banyan: an echo, it goes nowhere)`);
console.log(`  domain topics     ${eventsOf(contact.Banyan_Id__c, 'salesforce').join(', ')} (from salesforce)`);
console.log(`  legacy database   user ${contact.Banyan_Id__c}: ${ada.email}, ${ada.city}`);
const tagged = Number((await writes())[0]!.n);
const graceContacts = await contactOf('2');
console.log(`a domain service's UserChanged (user 2's email):`);
console.log(`  domain topics     ${eventsOf('2', 'domain').join(', ')} (from domain, ${once("the service's event", arrived.filter((e) => e.entityId === '2' && e.data.email === serviceEmail).length)})`);
console.log(`  legacy database   user 2: ${await legacyEmail()} (${once("the service's change in the legacy changelog", tagged)}, tagged)`);
console.log(`  Salesforce        Contact ${graceContacts[0]?.Id}: ${graceContacts[0]?.Email} (${once("user 2's Contact", graceContacts.length)})`);

const dropped = (name: string) => Number((statuses.transforms.find((t) => t.name === name)?.details.dropped as Record<string, number> | undefined)?.echo ?? 0);
const echoes = dropped('legacy-users') + dropped('salesforce-contacts');
const cdc = statuses.sources.find((s) => s.name === 'salesforce-contacts')!.details as { echoes: number; fingerprintEchoes: number };
const legacySink = statuses.sinks.find((s) => s.name === 'legacy-users')!.details as { written: Record<string, number>; observed: number; noops: number; stale: number };
const sfSink = statuses.sinks.find((s) => s.name === 'contacts-out')!.details as { written: Record<string, number>; noops: number; stale: number; observed: number; calls: Record<string, number> };
console.log('\n== echoes: what Banyan wrote came back and went no further');
console.log(`legacy changelog rows written by the legacy sink, dropped as echoes by legacy-users:   ${dropped('legacy-users')}`);
console.log(`Contact changes written by Banyan, dropped as echoes by salesforce-contacts:         ${dropped('salesforce-contacts')} (CDC source: ${cdc.echoes} echo records, ${cdc.fingerprintEchoes} known by fingerprint)`);
console.log(`legacy sink: rows written ${JSON.stringify(legacySink.written)}, fields observed ${legacySink.observed}, no-ops ${legacySink.noops}, stale fields ${legacySink.stale}`);
console.log(`Salesforce sink: records written ${JSON.stringify(sfSink.written)} in ${JSON.stringify(sfSink.calls)} calls, fields observed ${sfSink.observed}, no-ops ${sfSink.noops}, stale fields ${sfSink.stale}`);
// Each Banyan-tagged change must have come back as an echo and gone no further.
if (echoes < 4) throw new Error('the changes written by Banyan were not dropped as echoes');
const fromEcho = arrived.filter((e) => e.origin === 'salesforce' && (e.data.city === 'Berkeley' || e.entityId === '2' || e.entityId === String(next)));
if (fromEcho.length > 0) throw new Error(`a change written by Banyan became a domain event: ${JSON.stringify(fromEcho.map((e) => [e.type, e.entityId]))}`);
await databases.destroy();
process.exit(0);
