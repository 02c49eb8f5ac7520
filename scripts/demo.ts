/**
 * The README's first command, after the stack is up: Banyan's main job end to end on the local
 * stack. It creates the demo legacy table (a `users` table with address columns, the reference
 * example), installs its changelog, runs `banyan run` as a user would, makes changes in the legacy
 * database while it runs, and prints what arrived in Kafka, decoded through the registry.
 */
import { spawn } from 'node:child_process';
import jsforce from 'jsforce';
import { loadEnvFile, STACK_ENV_FILE } from '../src/cli/context';
import { Databases } from '../src/clients/databases';
import { AvroDecoder } from '../src/runtime/avro';
import { loadConfigFile } from '../src/config';
import { createKafka } from '../src/runtime/kafka';
import { createRootLogger } from '../src/runtime/logger';
import { readTopic } from '../test/helpers';

loadEnvFile(STACK_ENV_FILE);
const config = loadConfigFile('banyan.yaml');
const databases = new Databases(config.databases);
const db = databases.get('legacy_pg');
const source = config.sources.find((s) => s.name === 'legacy-users');
if (!source?.topic) throw new Error('banyan.yaml must define the legacy-users source with a topic');

await db.raw(`CREATE TABLE IF NOT EXISTS public.users (
  id integer PRIMARY KEY, name varchar(100) NOT NULL, email varchar(200),
  street varchar(200), city varchar(100), postal_code varchar(20), country char(2),
  credit_limit numeric(12,2), updated_at timestamp(3) NOT NULL DEFAULT now())`);
const { rows } = await db.raw('SELECT count(*)::int AS n FROM public.users');
if (rows[0].n === 0) {
  await db('public.users').insert([
    { id: 1, name: 'Ada Lovelace', email: 'ada@example.com', street: '12 St James Sq', city: 'London', postal_code: 'SW1Y 4JH', country: 'GB', credit_limit: 5000 },
    { id: 2, name: 'Grace Hopper', email: 'grace@example.com', street: '1 Navy Way', city: 'Arlington', postal_code: '22202', country: 'US', credit_limit: 7500.5 },
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

console.log('\n== banyan run (in the background), then changes in the legacy database');
const banyan = cli(['run']);
// The demo must not leave `banyan run` behind, whatever happens below.
process.on('exit', () => banyan.kill('SIGKILL'));
// Wait until every source runs (the status server of `banyan run`).
for (let ready = false; !ready; ) {
  await new Promise((resolve) => setTimeout(resolve, 250));
  ready = await fetch(`http://${config.http.host}:${config.http.port}/readyz`).then((r) => r.ok, () => false);
}
const next = Number((await db.raw('SELECT coalesce(max(id), 0) + 1 AS n FROM public.users')).rows[0].n);
await db('public.users').insert({ id: next, name: 'Alan Turing', email: 'alan@example.com', street: 'Bletchley Park', city: 'Milton Keynes', postal_code: 'MK3 6EB', country: 'GB', credit_limit: 1234.56 });
await db('public.users').where({ id: next }).update({ city: 'Manchester', postal_code: 'M13 9PL' });
await db('public.users').where({ id: 2 }).update({ email: 'grace.hopper@example.com' });

// A change made in Salesforce by one of its users, and one made by Banyan itself (an echo).
const salesforce = new jsforce.Connection({ oauth2: { loginUrl: config.salesforce!.loginUrl, clientId: config.salesforce!.clientId, clientSecret: config.salesforce!.clientSecret }, version: '62.0' });
await salesforce.login(config.salesforce!.username!, config.salesforce!.password!);
const [contact] = (await salesforce.query<{ Id: string }>('SELECT Id FROM Contact ORDER BY LastName LIMIT 1')).records;
await salesforce.sobject('Contact').update({ Id: contact!.Id, Email: `demo.${Date.now()}@example.com` });
const asBanyan = new jsforce.Connection({ instanceUrl: salesforce.instanceUrl, accessToken: salesforce.accessToken!, version: '62.0', callOptions: { client: config.originTag } });
await asBanyan.sobject('Contact').update({ Id: contact!.Id, Phone: '+41 44 000 00 00' });

const kafka = createKafka(config.kafka, createRootLogger('silent'));
const decoder = new AvroDecoder(config.schemaRegistry);
const messages = await readTopic(kafka, source.topic, 1_000_000, 8000);
const contacts = await readTopic(kafka, 'salesforce.Contact', 1_000_000, 3000);
banyan.kill('SIGTERM');
await new Promise((resolve) => banyan.once('exit', resolve));

console.log(`\n== ${messages.length} record(s) in ${source.topic}`);
for (const message of messages) {
  const change = (await decoder.decode(message.value!)) as { op: string; after: Record<string, unknown> | null; before: Record<string, unknown> | null; source: { position: string } };
  const row = change.after ?? change.before ?? {};
  console.log(`${change.op.padEnd(8)} id=${String(row.id).padEnd(4)} ${String(row.name).padEnd(14)} ${String(row.email).padEnd(26)} ${row.city}  (position ${change.source.position})`);
}

console.log(`\n== ${contacts.length} record(s) in salesforce.Contact`);
for (const message of contacts) {
  const change = (await decoder.decode(message.value!)) as { op: string; recordId: string; fields: Record<string, unknown>; echo: boolean };
  console.log(`${change.op.padEnd(8)} ${change.recordId}  ${JSON.stringify(change.fields)}${change.echo ? '  (echo: written by Banyan)' : ''}`);
}
await databases.destroy();
