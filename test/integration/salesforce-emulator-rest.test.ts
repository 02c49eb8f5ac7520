import type { Connection } from 'jsforce';
import { loginToEmulator } from '../helpers';
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, type EmulatorOptions, startEmulator } from '../../tools/salesforce-emulator/index.js';

let emulator: Emulator;

async function connect(opts: EmulatorOptions = {}): Promise<Connection> {
  emulator = await startEmulator(opts);
  return loginToEmulator(emulator);
}

afterEach(async () => {
  await emulator?.close();
});

/** A raw REST call, for what jsforce hides: status codes and exact bodies. */
async function rest(conn: Connection, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${emulator.url}/services/data/v62.0${path}`, {
    method,
    headers: { Authorization: `Bearer ${conn.accessToken}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
}

const contacts = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ Banyan_Id__c: `user-${from + i}`, LastName: `Person ${from + i}`, MailingCity: 'Oslo' }));

/** Collections report per-record errors with `statusCode`; jsforce's SaveError type names it errorCode. */
const firstStatusCode = (result: { errors: unknown[] }): string | undefined => (result.errors[0] as { statusCode?: string } | undefined)?.statusCode;

interface ContactRow {
  Id: string;
  FirstName: string | null;
  LastName: string;
  Email: string | null;
  Banyan_Id__c: string | null;
  LastModifiedDate: string;
  MailingAddress: Record<string, unknown> | null;
}

describe('Salesforce emulator: describe', () => {
  it('describes the standard objects with their fields and properties', async () => {
    const conn = await connect();
    const global = await conn.describeGlobal();
    expect(global.sobjects.map((o) => [o.name, o.keyPrefix])).toEqual(expect.arrayContaining([['Account', '001'], ['Contact', '003']]));

    const contact = await conn.sobject('Contact').describe();
    const field = (name: string) => contact.fields.find((f) => f.name === name);
    expect(field('LastName')).toMatchObject({ type: 'string', length: 80, nillable: false, createable: true, updateable: true });
    expect(field('Banyan_Id__c')).toMatchObject({ type: 'string', externalId: true, idLookup: true, unique: true, custom: true });
    expect(field('Email')).toMatchObject({ type: 'email', length: 80, nillable: true });
    expect(field('AccountId')).toMatchObject({ type: 'reference', referenceTo: ['Account'], relationshipName: 'Account' });
    expect(field('MailingAddress')).toMatchObject({ type: 'address', createable: false, updateable: false });
    expect(field('MailingCity')).toMatchObject({ type: 'string', compoundFieldName: 'MailingAddress' });
    expect(field('Birthdate')).toMatchObject({ type: 'date' });
    expect(field('Description')).toMatchObject({ type: 'textarea', length: 32000, nillable: true, filterable: false, sortable: false });
    expect(field('Id')).toMatchObject({ type: 'id', idLookup: true, createable: false });
    expect(field('CreatedDate')).toMatchObject({ type: 'datetime', createable: false, updateable: false });
    expect(field('IsDeleted')).toMatchObject({ type: 'boolean' });
    expect(field('SystemModstamp')).toMatchObject({ type: 'datetime' });

    const missing = await rest(conn, 'GET', '/sobjects/Nope__c/describe');
    expect(missing).toEqual({ status: 404, body: [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }] });
  });
});

describe('Salesforce emulator: records', () => {
  it('creates, retrieves, updates and deletes a contact with an address', async () => {
    const conn = await connect();
    const account = await conn.sobject('Account').create({ Name: 'Acme', BillingCity: 'Paris' });
    const created = await conn.sobject('Contact').create({
      FirstName: 'Ada', LastName: 'Lovelace', Email: 'ada@example.com', AccountId: account.id,
      MailingStreet: '12 Rue de Rivoli', MailingCity: 'Paris', MailingPostalCode: '75004', MailingCountry: 'France',
    });
    expect(created).toEqual({ id: expect.stringMatching(/^003[A-Za-z0-9]{12}[A-Z0-5]{3}$/), success: true, errors: [] });
    const id = created.id as string;

    const record = await conn.sobject('Contact').retrieve(id) as unknown as ContactRow & Record<string, unknown>;
    expect(record).toMatchObject({
      attributes: { type: 'Contact', url: `/services/data/v62.0/sobjects/Contact/${id}` },
      Id: id, Name: 'Ada Lovelace', AccountId: account.id, IsDeleted: false,
      MailingAddress: { street: '12 Rue de Rivoli', city: 'Paris', state: null, postalCode: '75004', country: 'France', latitude: null, longitude: null, geocodeAccuracy: null },
    });
    expect(record.CreatedDate).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$/);

    emulator.admin.advanceClock(60_000);
    const updated = await conn.sobject('Contact').update({ Id: id, Email: null, MailingCity: 'Lyon' });
    expect(updated).toEqual({ id, success: true, errors: [] });
    const after = await conn.sobject('Contact').retrieve(id, { fields: ['Email', 'MailingCity', 'LastModifiedDate'] }) as unknown as Record<string, unknown>;
    expect(after).toMatchObject({ Email: null, MailingCity: 'Lyon' });
    expect(Object.keys(after)).toEqual(['attributes', 'Email', 'MailingCity', 'LastModifiedDate']);
    expect(Date.parse((after.LastModifiedDate as string).replace('+0000', 'Z')) - Date.parse((record.CreatedDate as string).replace('+0000', 'Z'))).toBeGreaterThanOrEqual(60_000);

    await conn.sobject('Contact').destroy(id);
    const gone = await rest(conn, 'GET', `/sobjects/Contact/${id}`);
    expect(gone).toEqual({ status: 404, body: [{ errorCode: 'ENTITY_IS_DELETED', message: 'entity is deleted', fields: [] }] });
    expect((await rest(conn, 'GET', `/sobjects/Contact/${id.slice(0, 15)}`)).status).toBe(404);
  });

  it('validates field values the way Salesforce does', async () => {
    const conn = await connect({
      objects: [{
        name: 'Invoice__c', keyPrefix: 'a01',
        fields: [{ name: 'Amount__c', type: 'currency' }],
        validationRules: [{ errorMessage: 'Amount must not be negative', field: 'Amount__c', failsWhen: (r) => typeof r.Amount__c === 'number' && r.Amount__c < 0 }],
      }],
    });
    const create = (type: string, record: Record<string, unknown>) => rest(conn, 'POST', `/sobjects/${type}`, record);
    expect(await create('Contact', { FirstName: 'No Last Name' })).toEqual({
      status: 400, body: [{ message: 'Required fields are missing: [LastName]', errorCode: 'REQUIRED_FIELD_MISSING', fields: ['LastName'] }],
    });
    expect(await create('Contact', { LastName: 'x'.repeat(81) })).toEqual({
      status: 400, body: [{ message: `Last Name: data value too large: ${'x'.repeat(81)} (max length=80)`, errorCode: 'STRING_TOO_LONG', fields: ['LastName'] }],
    });
    expect(await create('Contact', { LastName: 'A', Shoe_Size__c: 9 })).toEqual({
      status: 400, body: [{ message: "No such column 'Shoe_Size__c' on sobject of type Contact", errorCode: 'INVALID_FIELD', fields: ['Shoe_Size__c'] }],
    });
    expect((await create('Contact', { LastName: 'A', CreatedDate: '2020-01-01T00:00:00Z' })).body).toMatchObject([{ errorCode: 'INVALID_FIELD_FOR_INSERT_UPDATE', fields: ['CreatedDate'] }]);
    expect((await create('Contact', { LastName: 'A', Description: 'd'.repeat(32000) })).status).toBe(201);
    expect((await create('Contact', { LastName: 'A', Description: 'd'.repeat(32001) })).body).toMatchObject([{ errorCode: 'STRING_TOO_LONG', fields: ['Description'] }]);
    expect((await create('Contact', { LastName: 'A', Email: 'not-an-email' })).body).toMatchObject([{ errorCode: 'INVALID_EMAIL_ADDRESS', fields: ['Email'] }]);
    expect((await create('Contact', { LastName: 'A', AccountId: 'garbage' })).body).toMatchObject([{ errorCode: 'MALFORMED_ID', fields: ['AccountId'] }]);
    expect((await create('Contact', { LastName: 'A', Birthdate: 'yesterday' })).body).toMatchObject([{ errorCode: 'JSON_PARSER_ERROR' }]);
    expect((await create('Invoice__c', { Amount__c: -5 })).body).toEqual([{ message: 'Amount must not be negative', errorCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION', fields: ['Amount__c'] }]);
    expect((await create('Invoice__c', { Amount__c: 5 })).status).toBe(201);

    const first = await create('Contact', { LastName: 'A', Banyan_Id__c: 'dup-1' });
    const second = await create('Contact', { LastName: 'B', Banyan_Id__c: 'DUP-1' });
    expect(second).toEqual({
      status: 400,
      body: [{ message: `duplicate value found: Banyan_Id__c duplicates value on record with id: ${(first.body as { id: string }).id}`, errorCode: 'DUPLICATE_VALUE', fields: [] }],
    });
    expect((await rest(conn, 'POST', '/sobjects/Lead', { LastName: 'A' })).status).toBe(404);
  });
});

describe('Salesforce emulator: upsert by external id', () => {
  it('answers 201 with created=true for a new record and 200 with created=false for an existing one', async () => {
    const conn = await connect();
    const first = await rest(conn, 'PATCH', '/sobjects/Contact/Banyan_Id__c/user-1', { LastName: 'Turing' });
    expect(first).toEqual({ status: 201, body: { id: expect.stringMatching(/^003/), success: true, errors: [], created: true } });
    const second = await rest(conn, 'PATCH', '/sobjects/Contact/Banyan_Id__c/user-1', { FirstName: 'Alan' });
    expect(second).toEqual({ status: 200, body: { id: (first.body as { id: string }).id, success: true, errors: [], created: false } });

    const viaJsforce = await conn.sobject('Contact').upsert({ Banyan_Id__c: 'user-1', Email: 'alan@example.com' }, 'Banyan_Id__c');
    expect(viaJsforce).toEqual({ id: (first.body as { id: string }).id, success: true, errors: [], created: false });
    const stored = await conn.query<ContactRow>("SELECT FirstName, LastName, Email FROM Contact WHERE Banyan_Id__c = 'user-1'");
    expect(stored.records).toMatchObject([{ FirstName: 'Alan', LastName: 'Turing', Email: 'alan@example.com' }]);

    expect(await rest(conn, 'PATCH', '/sobjects/Contact/Email/alan@example.com', { LastName: 'X' })).toEqual({
      status: 404, body: [{ errorCode: 'NOT_FOUND', message: 'Provided external ID field does not exist or is not accessible: Email' }],
    });
    expect((await rest(conn, 'PATCH', '/sobjects/Nope/Banyan_Id__c/x', { LastName: 'X' })).status).toBe(404);
  });

  it('answers 300 with the matching records when a non-unique external id matches several', async () => {
    const conn = await connect({
      objects: [{ name: 'Legacy_Row__c', keyPrefix: 'a02', fields: [{ name: 'Legacy_Key__c', type: 'string', externalId: true }] }],
    });
    const a = await conn.sobject('Legacy_Row__c').create({ Legacy_Key__c: 'k1' });
    const b = await conn.sobject('Legacy_Row__c').create({ Legacy_Key__c: 'k1' });
    const answer = await rest(conn, 'PATCH', '/sobjects/Legacy_Row__c/Legacy_Key__c/k1', {});
    expect(answer).toEqual({
      status: 300,
      body: [`/services/data/v62.0/sobjects/Legacy_Row__c/${a.id}`, `/services/data/v62.0/sobjects/Legacy_Row__c/${b.id}`],
    });
    await expect(conn.sobject('Legacy_Row__c').upsert({ Legacy_Key__c: 'k1' }, 'Legacy_Key__c')).rejects.toMatchObject({ errorCode: 'MULTIPLE_CHOICES' });
  });
});

describe('Salesforce emulator: sObject Collections', () => {
  it('upserts 200 records in one call, in request order, creating then updating', async () => {
    const conn = await connect();
    const created = await conn.sobject('Contact').upsert(contacts(200), 'Banyan_Id__c');
    expect(created).toHaveLength(200);
    expect(created.every((r) => r.success && r.created === true)).toBe(true);
    const rows = await conn.query<ContactRow>("SELECT Id, Banyan_Id__c FROM Contact WHERE Banyan_Id__c = 'user-17'");
    expect(rows.records[0]?.Id).toBe(created[17]?.id);

    const updated = await conn.sobject('Contact').upsert(contacts(200).map((c) => ({ ...c, MailingCity: 'Bergen' })), 'Banyan_Id__c');
    expect(updated.map((r) => r.id)).toEqual(created.map((r) => r.id));
    expect(updated.every((r) => r.success && r.created === false)).toBe(true);
    const count = await conn.query("SELECT COUNT() FROM Contact WHERE MailingCity = 'Bergen'");
    expect(count.totalSize).toBe(200);

    const tooMany = await rest(conn, 'PATCH', '/composite/sobjects/Contact/Banyan_Id__c', {
      allOrNone: false, records: contacts(201).map((c) => ({ attributes: { type: 'Contact' }, ...c })),
    });
    expect(tooMany).toEqual({ status: 400, body: [{ errorCode: 'EXCEEDED_ID_LIMIT', message: 'record limit reached. cannot submit more than 200 records into this call' }] });
  });

  it('reports per-record errors, and with allOrNone rolls everything back', async () => {
    const conn = await connect();
    const batch = [...contacts(2), { Banyan_Id__c: 'user-bad', LastName: null }, ...contacts(1, 2)];
    const partial = await conn.sobject('Contact').upsert(batch, 'Banyan_Id__c', { allOrNone: false });
    expect(partial.map((r) => r.success)).toEqual([true, true, false, true]);
    expect(partial[2]).toEqual({ success: false, errors: [{ statusCode: 'REQUIRED_FIELD_MISSING', message: 'Required fields are missing: [LastName]', fields: ['LastName'] }] });

    const allOrNone = await conn.sobject('Contact').upsert([...contacts(2, 10), { Banyan_Id__c: 'user-bad', LastName: null }], 'Banyan_Id__c', { allOrNone: true });
    expect(allOrNone.map(firstStatusCode)).toEqual(['ALL_OR_NONE_OPERATION_ROLLED_BACK', 'ALL_OR_NONE_OPERATION_ROLLED_BACK', 'REQUIRED_FIELD_MISSING']);
    expect((await conn.query("SELECT COUNT() FROM Contact WHERE Banyan_Id__c IN ('user-10', 'user-11')")).totalSize).toBe(0);

    const duplicate = await conn.sobject('Contact').upsert([{ Banyan_Id__c: 'same', LastName: 'A' }, { Banyan_Id__c: 'SAME', LastName: 'B' }], 'Banyan_Id__c');
    expect(duplicate.map(firstStatusCode)).toEqual(['DUPLICATE_EXTERNAL_ID', 'DUPLICATE_EXTERNAL_ID']);
  });

  it('creates, retrieves, updates and deletes through collections', async () => {
    const conn = await connect();
    const created = await conn.sobject('Contact').create([{ LastName: 'A' }, { LastName: 'B' }, { FirstName: 'no last name' }]);
    expect(created.map((r) => r.success)).toEqual([true, true, false]);
    const ids = created.filter((r) => r.success).map((r) => r.id as string);

    const updated = await conn.sobject('Contact').update(ids.map((Id) => ({ Id, Phone: '+47 1234' })));
    expect(updated).toEqual(ids.map((id) => ({ id, success: true, errors: [] })));
    const retrieved = await conn.sobject('Contact').retrieve([...ids, '003Em0000000zzzIAA'], { fields: ['Phone'] });
    expect(retrieved).toEqual([
      { attributes: { type: 'Contact', url: `/services/data/v62.0/sobjects/Contact/${ids[0]}` }, Phone: '+47 1234' },
      { attributes: { type: 'Contact', url: `/services/data/v62.0/sobjects/Contact/${ids[1]}` }, Phone: '+47 1234' },
      null,
    ]);

    const deleted = await conn.sobject('Contact').destroy([ids[0] as string, ids[0] as string]);
    expect(deleted[0]).toEqual({ id: ids[0], success: true, errors: [] });
    expect(deleted[1]).toMatchObject({ id: ids[0], success: false, errors: [{ statusCode: 'ENTITY_IS_DELETED' }] });
  });
});

describe('Salesforce emulator: fault injection', () => {
  it('answers REQUEST_LIMIT_EXCEEDED for the next calls and once the daily budget is spent', async () => {
    const conn = await connect();
    emulator.admin.rateLimitNextCalls(2);
    for (let i = 0; i < 2; i++) {
      const answer = await rest(conn, 'GET', '/limits');
      expect(answer).toEqual({ status: 403, body: [{ errorCode: 'REQUEST_LIMIT_EXCEEDED', message: 'TotalRequests Limit exceeded.' }] });
    }
    expect((await rest(conn, 'GET', '/limits')).status).toBe(200);

    emulator.admin.exhaustDailyApiLimit();
    await expect(conn.query('SELECT Id FROM Contact')).rejects.toMatchObject({ errorCode: 'REQUEST_LIMIT_EXCEEDED' });
    emulator.admin.advanceClock(24 * 60 * 60 * 1000);
    await expect(conn.query('SELECT Id FROM Contact')).resolves.toMatchObject({ totalSize: 0 });
  });

  it('answers 503 or 500 for the next calls', async () => {
    const conn = await connect();
    emulator.admin.failNextCalls(1, 503);
    expect(await rest(conn, 'GET', '/sobjects')).toMatchObject({ status: 503, body: [{ errorCode: 'SERVER_UNAVAILABLE' }] });
    emulator.admin.failNextCalls(1, 500);
    expect(await rest(conn, 'GET', '/sobjects')).toMatchObject({ status: 500, body: [{ errorCode: 'UNKNOWN_EXCEPTION' }] });
    expect((await rest(conn, 'GET', '/sobjects')).status).toBe(200);
  });

  it('fails writes to locked rows: per record in collections, whole call on single records', async () => {
    const conn = await connect();
    const seeded = await conn.sobject('Contact').upsert(contacts(3), 'Banyan_Id__c');
    emulator.admin.lockRows({ object: 'Contact', externalIds: { field: 'Banyan_Id__c', values: ['user-1'] } });
    const results = await conn.sobject('Contact').upsert(contacts(3).map((c) => ({ ...c, Phone: '1' })), 'Banyan_Id__c');
    expect(results.map((r) => r.success)).toEqual([true, false, true]);
    expect(results[1]?.errors).toEqual([{ statusCode: 'UNABLE_TO_LOCK_ROW', message: `unable to obtain exclusive access to this record or 1 records: ${seeded[1]?.id}`, fields: [] }]);
    emulator.admin.unlockRows();

    const id = seeded[0]?.id as string;
    emulator.admin.lockRows({ ids: [id], times: 1 });
    const locked = await rest(conn, 'PATCH', `/sobjects/Contact/${id}`, { Phone: '2' });
    expect(locked).toEqual({ status: 400, body: [{ errorCode: 'UNABLE_TO_LOCK_ROW', message: `unable to obtain exclusive access to this record or 1 records: ${id}`, fields: [] }] });
    // `times: 1`: the lock clears after one failed write, so a retry succeeds.
    expect((await rest(conn, 'PATCH', `/sobjects/Contact/${id}`, { Phone: '2' })).status).toBe(204);
  });

  it('arms the same faults through the admin HTTP endpoint', async () => {
    const conn = await connect();
    const admin = (path: string, body: unknown) =>
      fetch(`${emulator.url}/__admin/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const armed = await admin('faults/rate-limit', { calls: 1 });
    expect(await armed.json()).toMatchObject({ faults: { rateLimitedCalls: 1 } });
    expect((await rest(conn, 'GET', '/limits')).status).toBe(403);
    await admin('faults/server-error', { calls: 1, status: 500 });
    expect((await rest(conn, 'GET', '/limits')).status).toBe(500);
    await admin('sessions/expire', {});
    expect((await rest(conn, 'GET', '/limits')).status).toBe(401);
    expect((await admin('nope', {})).status).toBe(404);
  });
});
