import type { Connection } from 'jsforce';
import { loginToEmulator } from '../helpers';
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../../tools/salesforce-emulator/index.js';

let emulator: Emulator;
let now = Date.parse('2024-03-01T12:00:00Z');

async function connect(seed: 'demo' | 'empty'): Promise<Connection> {
  now = Date.parse('2024-03-01T12:00:00Z');
  emulator = await startEmulator({ seed, clock: () => now });
  return loginToEmulator(emulator);
}

afterEach(async () => {
  await emulator?.close();
});

interface Row {
  Id: string;
  FirstName: string | null;
  LastName: string;
  MailingCity: string | null;
}

async function lastNames(conn: Connection, soql: string): Promise<string[]> {
  const result = await conn.query<Row>(soql);
  return result.records.map((r) => r.LastName);
}

async function queryError(conn: Connection, soql: string): Promise<{ errorCode: string; message: string }> {
  const response = await fetch(`${emulator.url}/services/data/v62.0/query?q=${encodeURIComponent(soql)}`, {
    headers: { Authorization: `Bearer ${conn.accessToken}` },
  });
  expect(response.status).toBe(400);
  const [error] = (await response.json()) as { errorCode: string; message: string }[];
  return error as { errorCode: string; message: string };
}

describe('Salesforce emulator: SOQL', () => {
  it('filters with comparison, IN, LIKE, AND/OR and parentheses, case-insensitively for text', async () => {
    const conn = await connect('demo');
    const base = 'SELECT LastName FROM Contact';
    expect(await lastNames(conn, `${base} WHERE MailingCity = 'berlin' ORDER BY LastName`)).toEqual(['Gödel', 'Noether']);
    expect(await lastNames(conn, `${base} WHERE MailingCity != 'Berlin' ORDER BY LastName`)).toEqual(['Hopper', 'Lovelace', 'Turing']);
    expect(await lastNames(conn, `${base} WHERE Banyan_Id__c IN ('user-2001', 'user-2003') ORDER BY LastName DESC`)).toEqual(['Turing', 'Lovelace']);
    expect(await lastNames(conn, `${base} WHERE Banyan_Id__c NOT IN ('user-2001') AND Banyan_Id__c != null ORDER BY LastName`)).toEqual(['Hopper', 'Noether', 'Turing']);
    expect(await lastNames(conn, `${base} WHERE Banyan_Id__c = null`)).toEqual(['Gödel']);
    expect(await lastNames(conn, `${base} WHERE Email LIKE '%@acme.example' ORDER BY FirstName`)).toEqual(['Lovelace', 'Hopper']);
    expect(await lastNames(conn, `${base} WHERE (MailingCity = 'London' OR MailingCity = 'Berlin') AND (NOT FirstName = 'Kurt') ORDER BY LastName`)).toEqual(['Noether', 'Turing']);
    expect(await lastNames(conn, `${base} WHERE MailingState = null ORDER BY MailingCountry DESC, LastName ASC LIMIT 2 OFFSET 1`)).toEqual(['Gödel', 'Noether']);
    const count = await conn.query("SELECT COUNT() FROM Contact WHERE MailingCountry = 'United States'");
    expect(count).toMatchObject({ totalSize: 2, done: true, records: [] });
  });

  it('compares datetimes, dates, numbers and booleans, and reads escaped strings', async () => {
    const conn = await connect('empty');
    await conn.sobject('Contact').create({ LastName: "O'Brien", Birthdate: '1990-05-17', HasOptedOutOfEmail: true });
    now = Date.parse('2024-03-02T12:00:00Z');
    await conn.sobject('Contact').create({ LastName: 'Back\\slash', Birthdate: '1985-01-02' });
    await conn.sobject('Account').create({ Name: 'Big', NumberOfEmployees: 5000, AnnualRevenue: 1.5e6 });
    await conn.sobject('Account').create({ Name: 'Small', NumberOfEmployees: 12 });

    expect(await lastNames(conn, 'SELECT LastName FROM Contact WHERE CreatedDate > 2024-03-02T00:00:00Z')).toEqual(['Back\\slash']);
    expect(await lastNames(conn, 'SELECT LastName FROM Contact WHERE CreatedDate <= 2024-03-01T13:00:00+01:00')).toEqual(["O'Brien"]);
    expect(await lastNames(conn, 'SELECT LastName FROM Contact WHERE Birthdate < 1989-01-01')).toEqual(['Back\\slash']);
    expect(await lastNames(conn, 'SELECT LastName FROM Contact WHERE HasOptedOutOfEmail = true')).toEqual(["O'Brien"]);
    expect(await lastNames(conn, "SELECT LastName FROM Contact WHERE LastName = 'O\\'Brien'")).toEqual(["O'Brien"]);
    expect(await lastNames(conn, "SELECT LastName FROM Contact WHERE LastName = 'Back\\\\slash'")).toEqual(['Back\\slash']);
    const big = await conn.query<{ Name: string; AnnualRevenue: number }>('SELECT Name, AnnualRevenue FROM Account WHERE NumberOfEmployees >= 100');
    expect(big.records).toMatchObject([{ Name: 'Big', AnnualRevenue: 1500000 }]);
    const ordered = await conn.query<{ Name: string }>('SELECT Name FROM Account ORDER BY AnnualRevenue DESC NULLS LAST');
    expect(ordered.records.map((r) => r.Name)).toEqual(['Big', 'Small']);
  });

  it('returns compound addresses and the record attributes', async () => {
    const conn = await connect('demo');
    const result = await conn.query("SELECT Id, Name, MailingAddress FROM Contact WHERE Banyan_Id__c = 'user-2003'");
    const [row] = result.records as Record<string, unknown>[];
    expect(row).toEqual({
      attributes: { type: 'Contact', url: `/services/data/v62.0/sobjects/Contact/${String(row?.Id)}` },
      Id: expect.stringMatching(/^003/),
      Name: 'Alan Turing',
      MailingAddress: { street: '221B Baker Street', city: 'London', state: null, postalCode: 'NW1 6XE', country: 'United Kingdom', latitude: null, longitude: null, geocodeAccuracy: null },
    });
  });

  it('pages with nextRecordsUrl in batches of 2000, or of the Sforce-Query-Options batch size', async () => {
    const conn = await connect('empty');
    for (let start = 0; start < 2100; start += 200) {
      const batch = Array.from({ length: Math.min(200, 2100 - start) }, (_, i) => ({ LastName: `P${String(start + i).padStart(4, '0')}` }));
      await conn.sobject('Contact').create(batch);
    }
    const first = await conn.query<Row>('SELECT Id, LastName FROM Contact ORDER BY LastName');
    expect(first).toMatchObject({ totalSize: 2100, done: false });
    expect(first.records).toHaveLength(2000);
    const raw = await fetch(`${emulator.url}/services/data/v62.0/query?q=${encodeURIComponent('SELECT Id FROM Contact')}`, { headers: { Authorization: `Bearer ${conn.accessToken}` } });
    expect((await raw.json()) as object).toMatchObject({ totalSize: 2100, done: false, nextRecordsUrl: expect.stringMatching(/^\/services\/data\/v62\.0\/query\/01g[A-Za-z0-9]{15}-2000$/) });
    const second = await conn.queryMore<Row>(first.nextRecordsUrl as string);
    expect(second).toMatchObject({ totalSize: 2100, done: true });
    expect(second.records.map((r) => r.LastName)).toEqual(Array.from({ length: 100 }, (_, i) => `P${2000 + i}`));

    const small = await conn.query<Row>('SELECT Id FROM Contact', { headers: { 'Sforce-Query-Options': 'batchSize=300' } });
    expect(small.records).toHaveLength(300);
    const floor = await conn.query<Row>('SELECT Id FROM Contact', { headers: { 'Sforce-Query-Options': 'batchSize=50' } });
    expect(floor.records).toHaveLength(200);

    const all: Row[] = [];
    await new Promise<void>((resolve, reject) => {
      conn.query<Row>('SELECT Id, LastName FROM Contact', { headers: { 'Sforce-Query-Options': 'batchSize=500' } })
        .on('record', (record: Row) => all.push(record))
        .on('end', () => resolve())
        .on('error', reject)
        .run({ autoFetch: true, maxFetch: 5000 });
    });
    expect(new Set(all.map((r) => r.Id)).size).toBe(2100);

    const stale = await fetch(`${emulator.url}/services/data/v62.0/query/01gEm0000000999IAA-2000`, { headers: { Authorization: `Bearer ${conn.accessToken}` } });
    expect(await stale.json()).toEqual([{ errorCode: 'INVALID_QUERY_LOCATOR', message: 'invalid query locator' }]);
  });

  it('includes deleted records only in queryAll', async () => {
    const conn = await connect('demo');
    const [gone] = (await conn.query<Row>("SELECT Id FROM Contact WHERE LastName = 'Turing'")).records;
    await conn.sobject('Contact').destroy(gone?.Id as string);
    expect(await lastNames(conn, "SELECT LastName FROM Contact WHERE LastName = 'Turing'")).toEqual([]);
    const all = await conn.query<{ LastName: string; IsDeleted: boolean }>("SELECT LastName, IsDeleted FROM Contact WHERE LastName = 'Turing'", { scanAll: true });
    expect(all.records).toMatchObject([{ LastName: 'Turing', IsDeleted: true }]);
  });

  it('rejects bad queries with Salesforce error codes and a message pointing at the problem', async () => {
    const conn = await connect('empty');
    expect(await queryError(conn, 'SELECT Id FORM Contact')).toEqual({
      errorCode: 'MALFORMED_QUERY', message: "\nSELECT Id FORM Contact\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FORM'",
    });
    const unknownField = await queryError(conn, 'SELECT Id, Shoe_Size__c FROM Contact');
    expect(unknownField.errorCode).toBe('INVALID_FIELD');
    expect(unknownField.message).toContain("No such column 'Shoe_Size__c' on entity 'Contact'");
    expect(unknownField.message).toContain('ERROR at Row:1:Column:12');
    expect((await queryError(conn, 'SELECT Id FROM Lead')).errorCode).toBe('INVALID_TYPE');
    expect((await queryError(conn, "SELECT Id FROM Contact WHERE LastName = 5")).message).toContain("value of filter criterion for field 'LastName' must be of type string");
    expect((await queryError(conn, "SELECT Id FROM Contact WHERE CreatedDate > '2024-01-01'")).message).toContain('must be of type dateTime and should not be enclosed in quotes');
    expect((await queryError(conn, "SELECT Id FROM Contact WHERE LastName = 'a' AND FirstName = 'b' OR Email = 'c'")).errorCode).toBe('MALFORMED_QUERY');
    expect((await queryError(conn, "SELECT Id FROM Contact WHERE LastName = 'unterminated")).errorCode).toBe('MALFORMED_QUERY');
    expect((await queryError(conn, 'SELECT Account.Name FROM Contact')).errorCode).toBe('INVALID_FIELD');
    await expect(conn.query('SELECT Id FROM Nope__c')).rejects.toMatchObject({ errorCode: 'INVALID_TYPE' });
  });
});
