import type { Connection } from 'jsforce';
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, type EmulatorOptions, startEmulator } from '../../tools/salesforce-emulator/index.js';
import { makeId } from '../../tools/salesforce-emulator/ids.js';
import { loginToEmulator, waitFor } from '../helpers';

let emulator: Emulator;

async function connect(opts: EmulatorOptions = {}, callOptions?: { client: string }): Promise<Connection> {
  emulator = await startEmulator(opts);
  return loginToEmulator(emulator, callOptions);
}

afterEach(async () => {
  await emulator?.close();
});

interface Answer {
  status: number;
  text: string;
  body: unknown;
  contentType: string | null;
  limitInfo: string | null;
}

/** A raw call under /services/data/v62.0, for what jsforce hides: statuses, exact bodies, headers. */
async function call(conn: Connection, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const isText = typeof body === 'string';
  const response = await fetch(`${emulator.url}/services/data/v62.0${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${conn.accessToken}`,
      'Content-Type': isText ? 'text/csv' : 'application/json',
      ...headers,
    },
    ...(body === undefined ? {} : { body: isText ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  const contentType = response.headers.get('content-type');
  return {
    status: response.status,
    text,
    body: text !== '' && contentType?.startsWith('application/json') ? JSON.parse(text) : undefined,
    contentType,
    limitInfo: response.headers.get('sforce-limit-info'),
  };
}

type JobInfo = Record<string, unknown> & { id: string; state: string; numberRecordsProcessed: number; numberRecordsFailed: number };

async function createJob(conn: Connection, job: Record<string, unknown>, headers?: Record<string, string>): Promise<JobInfo> {
  const answer = await call(conn, 'POST', '/jobs/ingest', job, headers);
  expect(answer.status, answer.text).toBe(200);
  return answer.body as JobInfo;
}

async function upload(conn: Connection, id: string, csv: string, headers?: Record<string, string>): Promise<void> {
  const answer = await call(conn, 'PUT', `/jobs/ingest/${id}/batches`, csv, headers);
  expect(answer.status, answer.text).toBe(201);
}

async function setState(conn: Connection, id: string, state: string, headers?: Record<string, string>): Promise<Answer> {
  return call(conn, 'PATCH', `/jobs/ingest/${id}`, { state }, headers);
}

async function jobInfo(conn: Connection, id: string): Promise<JobInfo> {
  const answer = await call(conn, 'GET', `/jobs/ingest/${id}`);
  expect(answer.status, answer.text).toBe(200);
  return answer.body as JobInfo;
}

/** Polls job info until the job reaches `state`, as a client would. */
async function waitForState(conn: Connection, id: string, state: string): Promise<JobInfo> {
  return waitFor(async () => {
    const info = await jobInfo(conn, id);
    return info.state === state && info;
  }, `job ${id} to be ${state}`);
}

/** Create, upload, close, and wait for the job to finish; returns its final job info. */
async function runJob(conn: Connection, job: Record<string, unknown>, csv: string, finalState = 'JobComplete'): Promise<JobInfo> {
  const { id } = await createJob(conn, job);
  await upload(conn, id, csv);
  expect((await setState(conn, id, 'UploadComplete')).status).toBe(200);
  return waitForState(conn, id, finalState);
}

async function results(conn: Connection, id: string, kind: 'successfulResults' | 'failedResults' | 'unprocessedrecords'): Promise<string> {
  const answer = await call(conn, 'GET', `/jobs/ingest/${id}/${kind}/`);
  expect(answer.status, answer.text).toBe(200);
  expect(answer.contentType).toMatch(/^text\/csv/);
  return answer.text;
}

/** Result CSV rows without the header, split naively (the values in these tests hold no delimiters). */
const rowsOf = (csv: string): string[][] =>
  csv.split('\n').slice(1).filter((line) => line !== '').map((line) => line.split(',').map((cell) => cell.replace(/^"|"$/g, '')));

const contactsCsv = (from: number, to: number, lastName = (i: number) => `Person ${i}`) =>
  ['Banyan_Id__c,FirstName,LastName', ...Array.from({ length: to - from }, (_, k) => `user-${from + k},F${from + k},${lastName(from + k)}`)].join('\n') + '\n';

interface ChangeEventHeader {
  entityName: string;
  recordIds: string[];
  changeType: string;
  changeOrigin: string;
  transactionKey: string;
  changedFields: string[];
}

const headers = () => emulator.admin.changeEvents().map((e) => e.payload.ChangeEventHeader as ChangeEventHeader);

async function count(conn: Connection, soql: string): Promise<number> {
  return (await conn.query(soql)).totalSize;
}

describe('Bulk API 2.0 ingest: a job from creation to results', () => {
  it('answers the documented job fields, processes asynchronously in chunks of 200, and writes results as CSV', async () => {
    const conn = await connect({}, { client: 'banyan-sink' });
    const callOptions = { 'Sforce-Call-Options': 'client=banyan-sink' };
    const created = await createJob(conn, { object: 'Contact', operation: 'insert', contentType: 'CSV', lineEnding: 'LF', columnDelimiter: 'COMMA' }, callOptions);
    const id = created.id;
    expect(id).toMatch(/^750[A-Za-z0-9]{12}[A-Z0-5]{3}$/);
    expect(created).toEqual({
      id,
      operation: 'insert',
      object: 'Contact',
      createdById: expect.stringMatching(/^005/),
      createdDate: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/),
      systemModstamp: expect.stringMatching(/\+0000$/),
      state: 'Open',
      concurrencyMode: 'Parallel',
      contentType: 'CSV',
      apiVersion: 62,
      contentUrl: `services/data/v62.0/jobs/ingest/${id}/batches`,
      lineEnding: 'LF',
      columnDelimiter: 'COMMA',
    });
    expect(Object.keys(created)).toEqual(['id', 'operation', 'object', 'createdById', 'createdDate', 'systemModstamp', 'state',
      'concurrencyMode', 'contentType', 'apiVersion', 'contentUrl', 'lineEnding', 'columnDelimiter']);

    const putAnswer = await call(conn, 'PUT', `/jobs/ingest/${id}/batches`, contactsCsv(0, 450), callOptions);
    expect(putAnswer).toMatchObject({ status: 201, text: '' });

    emulator.admin.pauseBulkProcessing();
    const closed = await setState(conn, id, 'UploadComplete', callOptions);
    expect(closed.status).toBe(200);
    // The Close answer: no contentUrl (the job is no longer Open), no line ending or delimiter.
    expect(closed.body).toEqual({
      id, operation: 'insert', object: 'Contact', createdById: created.createdById, createdDate: created.createdDate,
      systemModstamp: expect.any(String), state: 'UploadComplete', concurrencyMode: 'Parallel', contentType: 'CSV', apiVersion: 62,
    });
    expect(await jobInfo(conn, id)).toEqual({
      id, operation: 'insert', object: 'Contact', createdById: created.createdById, createdDate: created.createdDate,
      systemModstamp: expect.any(String), state: 'UploadComplete', concurrencyMode: 'Parallel', contentType: 'CSV', apiVersion: 62,
      jobType: 'V2Ingest', lineEnding: 'LF', columnDelimiter: 'COMMA', numberRecordsProcessed: 0, numberRecordsFailed: 0, retries: 0,
      totalProcessingTime: 0, apiActiveProcessingTime: 0, apexProcessingTime: 0,
    });

    // Each step is one of Salesforce's phases: start (InProgress), then one transaction per 200 records.
    const progress: [string, number][] = [];
    for (;;) {
      const info = await jobInfo(conn, id);
      progress.push([info.state, info.numberRecordsProcessed]);
      if (info.state === 'JobComplete') break;
      expect(emulator.admin.stepBulkProcessing()).toBe(1);
    }
    expect(progress).toEqual([['UploadComplete', 0], ['InProgress', 0], ['InProgress', 200], ['InProgress', 400], ['JobComplete', 450]]);
    expect(emulator.admin.stepBulkProcessing()).toBe(0);
    expect(await count(conn, 'SELECT COUNT() FROM Contact')).toBe(450);

    const successful = await results(conn, id, 'successfulResults');
    const lines = successful.split('\n');
    expect(lines[0]).toBe('"sf__Id","sf__Created","Banyan_Id__c","FirstName","LastName"');
    expect(lines[1]).toMatch(/^"003[A-Za-z0-9]{15}","true","user-0","F0","Person 0"$/);
    expect(rowsOf(successful)).toHaveLength(450);
    expect(await results(conn, id, 'failedResults')).toBe('"sf__Id","sf__Error","Banyan_Id__c","FirstName","LastName"\n');
    expect(await results(conn, id, 'unprocessedrecords')).toBe('"Banyan_Id__c","FirstName","LastName"\n');
    // Without the trailing slash too, as jsforce asks.
    expect((await call(conn, 'GET', `/jobs/ingest/${id}/successfulResults`)).text).toBe(successful);

    // Change Data Capture: one transaction per chunk, origin Bulk API without the caller's client option.
    const events = headers();
    expect(events).toHaveLength(450);
    expect(new Set(events.map((h) => h.changeOrigin))).toEqual(new Set(['com/salesforce/api/bulkapi/62.0']));
    const perTransaction = new Map<string, number>();
    for (const h of events) perTransaction.set(h.transactionKey, (perTransaction.get(h.transactionKey) ?? 0) + h.recordIds.length);
    expect([...perTransaction.values()]).toEqual([200, 200, 50]);

    expect(emulator.admin.bulkJobs()).toEqual([{
      id, object: 'Contact', operation: 'insert', state: 'JobComplete',
      numberRecordsProcessed: 450, numberRecordsFailed: 0, numberRecordsUnprocessed: 0,
    }]);
  });

  it('upserts 1,000 records by external id: creates the new ones, updates the existing ones matched case-insensitively', async () => {
    const conn = await connect();
    const first = await runJob(conn, { object: 'Contact', operation: 'insert' }, contactsCsv(0, 400));
    expect(first).toMatchObject({ numberRecordsProcessed: 400, numberRecordsFailed: 0 });
    const existing = new Map(rowsOf(await results(conn, first.id, 'successfulResults')).map(([id, , ext]) => [ext as string, id as string]));

    // Existing ids in upper case: text external ids match whatever the case.
    const csv = ['Banyan_Id__c,LastName', ...Array.from({ length: 1000 }, (_, i) => `${i < 400 ? `USER-${i}` : `user-${i}`},Renamed ${i}`)].join('\n');
    const job = await runJob(conn, { object: 'Contact', operation: 'upsert', externalIdFieldName: 'Banyan_Id__c' }, csv);
    expect(job).toMatchObject({ state: 'JobComplete', externalIdFieldName: 'Banyan_Id__c', numberRecordsProcessed: 1000, numberRecordsFailed: 0 });
    const rows = rowsOf(await results(conn, job.id, 'successfulResults'));
    expect(rows).toHaveLength(1000);
    expect(rows.filter(([, created]) => created === 'false')).toHaveLength(400);
    expect(rows.filter(([, created]) => created === 'true')).toHaveLength(600);
    for (const [id, created, ext] of rows.slice(0, 400)) {
      expect(created).toBe('false');
      expect(id).toBe(existing.get((ext as string).toLowerCase()));
    }
    expect(await count(conn, 'SELECT COUNT() FROM Contact')).toBe(1000);
    const updated = await conn.query<{ LastName: string; FirstName: string }>("SELECT FirstName, LastName FROM Contact WHERE Banyan_Id__c = 'user-7'");
    // FirstName was not in the upload: left as it was.
    expect(updated.records[0]).toMatchObject({ FirstName: 'F7', LastName: 'Renamed 7' });
  });
});

describe('Bulk API 2.0 ingest: record failures', () => {
  const invoices: EmulatorOptions = {
    objects: [{
      name: 'Invoice__c',
      keyPrefix: 'a0I',
      fields: [
        { name: 'Amount__c', type: 'currency' },
        { name: 'Invoice_Id__c', type: 'string', externalId: true, unique: true },
      ],
      validationRules: [{
        errorMessage: 'Amount must not be negative',
        field: 'Amount__c',
        failsWhen: (record) => typeof record.Amount__c === 'number' && record.Amount__c < 0,
      }],
    }],
  };

  it('puts a record failing a required field, a validation rule or a type in failedResults with its error; the rest land', async () => {
    const conn = await connect(invoices);
    const contacts = await runJob(conn, { object: 'Contact', operation: 'insert' }, 'FirstName,LastName\nAda,Lovelace\nNo,\nAlan,Turing\n');
    expect(contacts).toMatchObject({ numberRecordsProcessed: 3, numberRecordsFailed: 1 });
    expect(await results(conn, contacts.id, 'failedResults')).toBe(
      '"sf__Id","sf__Error","FirstName","LastName"\n"","REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --","No",""\n',
    );
    expect(rowsOf(await results(conn, contacts.id, 'successfulResults')).map((r) => r.slice(1))).toEqual([['true', 'Ada', 'Lovelace'], ['true', 'Alan', 'Turing']]);

    const job = await runJob(conn, { object: 'Invoice__c', operation: 'upsert', externalIdFieldName: 'Invoice_Id__c' },
      'Invoice_Id__c,Amount__c\ninv-1,10.5\ninv-2,-3\ninv-3,abc\ninv-4,7\n,8\ninv-9,1\nINV-9,2\n');
    expect(job).toMatchObject({ numberRecordsProcessed: 7, numberRecordsFailed: 5 });
    expect(await results(conn, job.id, 'failedResults')).toBe([
      '"sf__Id","sf__Error","Invoice_Id__c","Amount__c"',
      '"","FIELD_CUSTOM_VALIDATION_EXCEPTION:Amount must not be negative:Amount__c --","inv-2","-3"',
      '"","INVALID_TYPE_ON_FIELD_IN_RECORD:Amount: value not of required type: abc:Amount__c --","inv-3","abc"',
      '"","MISSING_ARGUMENT:Invoice_Id__c not specified:Invoice_Id__c --","","8"',
      // Two records of one chunk with the same external id (whatever the case): both fail, as in sObject Collections.
      '"","DUPLICATE_EXTERNAL_ID:Duplicate external id specified: inv-9:Invoice_Id__c --","inv-9","1"',
      '"","DUPLICATE_EXTERNAL_ID:Duplicate external id specified: INV-9:Invoice_Id__c --","INV-9","2"',
      '',
    ].join('\n'));
    expect(await count(conn, 'SELECT COUNT() FROM Invoice__c')).toBe(2);

    // Updates name the record in sf__Id, also when it failed.
    const [adaId] = rowsOf(await results(conn, contacts.id, 'successfulResults'))[0] as string[];
    const nowhere = makeId('003', 999_999);
    const update = await runJob(conn, { object: 'Contact', operation: 'update' },
      `Id,Email\n${adaId},not-an-email\n${nowhere},a@b.c\n,a@b.c\nbogus,a@b.c\n`);
    expect(update).toMatchObject({ numberRecordsProcessed: 4, numberRecordsFailed: 4 });
    expect(rowsOf(await results(conn, update.id, 'failedResults')).map(([id, error]) => [id, error])).toEqual([
      [adaId, 'INVALID_EMAIL_ADDRESS:Email: invalid email address: not-an-email:Email --'],
      [nowhere, 'INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--'],
      ['', 'MISSING_ARGUMENT:Id not specified in an update call:--'],
      ['bogus', 'MALFORMED_ID:malformed id bogus:Id --'],
    ]);
  });

  it('keeps the version a job was created on: its apiVersion, its change origin, and no sf__Id in failedResults before 53.0', async () => {
    const conn = await connect();
    const v52 = (method: string, path: string, body?: string, contentType = 'application/json') =>
      fetch(`${emulator.url}/services/data/v52.0${path}`, {
        method, headers: { Authorization: `Bearer ${conn.accessToken}`, 'Content-Type': contentType }, ...(body === undefined ? {} : { body }),
      });
    const created = await (await v52('POST', '/jobs/ingest', JSON.stringify({ object: 'Contact', operation: 'insert' }))).json() as JobInfo;
    expect(created).toMatchObject({ apiVersion: 52, contentUrl: `services/data/v52.0/jobs/ingest/${created.id}/batches` });
    expect((await v52('PUT', `/jobs/ingest/${created.id}/batches`, 'FirstName,LastName\nA,B\nNo,\n', 'text/csv')).status).toBe(201);
    expect((await v52('PATCH', `/jobs/ingest/${created.id}`, JSON.stringify({ state: 'UploadComplete' }))).status).toBe(200);
    await waitForState(conn, created.id, 'JobComplete');
    expect(await results(conn, created.id, 'failedResults')).toBe(
      '"sf__Error","FirstName","LastName"\n"REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --","No",""\n',
    );
    expect(headers().map((h) => h.changeOrigin)).toEqual(['com/salesforce/api/bulkapi/52.0']);
  });

  it('fails a locked row with UNABLE_TO_LOCK_ROW and writes the others', async () => {
    const conn = await connect();
    const seeded = await runJob(conn, { object: 'Contact', operation: 'insert' }, contactsCsv(0, 5));
    const ids = rowsOf(await results(conn, seeded.id, 'successfulResults')).map(([id]) => id as string);
    emulator.admin.lockRows({ object: 'Contact', externalIds: { field: 'Banyan_Id__c', values: ['user-3'] } });

    const job = await runJob(conn, { object: 'Contact', operation: 'upsert', externalIdFieldName: 'Banyan_Id__c' }, contactsCsv(0, 6, (i) => `Locked ${i}`));
    expect(job).toMatchObject({ numberRecordsProcessed: 6, numberRecordsFailed: 1 });
    expect(await results(conn, job.id, 'failedResults')).toBe([
      '"sf__Id","sf__Error","Banyan_Id__c","FirstName","LastName"',
      `"${ids[3]}","UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 1 records: ${ids[3]}:--","user-3","F3","Locked 3"`,
      '',
    ].join('\n'));
    const names = await conn.query<{ Banyan_Id__c: string; LastName: string }>('SELECT Banyan_Id__c, LastName FROM Contact ORDER BY Banyan_Id__c');
    expect(names.records.map((r) => `${r.Banyan_Id__c}:${r.LastName}`)).toEqual([
      'user-0:Locked 0', 'user-1:Locked 1', 'user-2:Locked 2', 'user-3:Person 3', 'user-4:Locked 4', 'user-5:Locked 5',
    ]);
  });

  it('sets a field to null for #N/A and leaves it as it is for an empty cell', async () => {
    const conn = await connect();
    const { id } = await conn.sobject('Contact').create({ LastName: 'Nulls', Email: 'n@example.com', Phone: '123', MailingCity: 'Oslo' }) as { id: string };
    const before = headers().length;
    const job = await runJob(conn, { object: 'Contact', operation: 'update' }, `Id,Email,Phone,MailingCity\n${id},#N/A,,Bergen\n`);
    expect(job).toMatchObject({ numberRecordsProcessed: 1, numberRecordsFailed: 0 });
    const record = await conn.sobject('Contact').retrieve(id) as unknown as Record<string, unknown>;
    expect(record).toMatchObject({ Email: null, Phone: '123', MailingAddress: expect.objectContaining({ city: 'Bergen' }) });
    const update = headers().slice(before);
    expect(update).toHaveLength(1);
    expect(update[0]).toMatchObject({ changeType: 'UPDATE', changeOrigin: 'com/salesforce/api/bulkapi/62.0' });
    expect([...(update[0]?.changedFields ?? [])].sort()).toEqual(['Email', 'LastModifiedDate', 'MailingAddress.City']);
  });

  it('deletes to the recycle bin, hard-deletes for good, and reports ids that name no record', async () => {
    const conn = await connect();
    const seeded = await runJob(conn, { object: 'Contact', operation: 'insert' }, contactsCsv(0, 4));
    const ids = rowsOf(await results(conn, seeded.id, 'successfulResults')).map(([id]) => id as string);
    const accountId = makeId('001', 1);
    const soft = await runJob(conn, { object: 'Contact', operation: 'delete' }, `Id\n${ids[0]}\n${ids[1]}\n${accountId}\n`);
    expect(soft).toMatchObject({ numberRecordsProcessed: 3, numberRecordsFailed: 1 });
    expect(rowsOf(await results(conn, soft.id, 'failedResults'))).toEqual([
      [accountId, `MALFORMED_ID:Contact ID: id value of incorrect type: ${accountId}:Id --`, accountId],
    ]);
    const hard = await runJob(conn, { object: 'Contact', operation: 'hardDelete' }, `Id\n${ids[2]}\n${ids[0]}\n`);
    expect(rowsOf(await results(conn, hard.id, 'failedResults'))).toEqual([[ids[0], 'ENTITY_IS_DELETED:entity is deleted:--', ids[0]]]);
    const all = (await call(conn, 'GET', `/queryAll?q=${encodeURIComponent('SELECT Id, IsDeleted FROM Contact ORDER BY Id')}`)).body as { records: { Id: string; IsDeleted: boolean }[] };
    expect(all.records.map((r) => [r.Id, r.IsDeleted])).toEqual([[ids[0], true], [ids[1], true], [ids[3], false]]);
    expect(headers().filter((h) => h.changeType === 'DELETE').flatMap((h) => h.recordIds).sort()).toEqual([ids[0], ids[1], ids[2]].sort());
  });
});

describe('Bulk API 2.0 ingest: job states', () => {
  it('refuses invalid state changes, uploads after close, a second upload and early results as Salesforce does', async () => {
    const conn = await connect();
    const { id } = await createJob(conn, { object: 'Contact', operation: 'insert' });
    expect(await call(conn, 'GET', `/jobs/ingest/${id}/successfulResults`)).toMatchObject({ status: 400, body: [{ errorCode: 'INVALIDJOBSTATE' }] });
    expect(await call(conn, 'DELETE', `/jobs/ingest/${id}`)).toMatchObject({ status: 400, body: [{ errorCode: 'INVALIDJOBSTATE' }] });
    expect(await setState(conn, id, 'Closed')).toMatchObject({
      status: 400, body: [{ errorCode: 'API_ERROR', message: "Invalid value: 'Closed' supplied for property: 'state'" }],
    });
    expect(await setState(conn, id, 'JobComplete')).toMatchObject({ status: 400, body: [{ errorCode: 'INVALIDJOBSTATE' }] });
    expect(await call(conn, 'PUT', `/jobs/ingest/${id}/batches`, 'LastName\nX\n', { 'Content-Type': 'application/json' }))
      .toMatchObject({ status: 415 });

    await upload(conn, id, 'LastName\nOne\n');
    await upload(conn, id, 'LastName\nTwo\n');
    expect(await setState(conn, id, 'UploadComplete')).toEqual(expect.objectContaining({
      status: 400,
      body: [{
        errorCode: 'BULK_API_ERROR',
        message: `Found multipe contents for job: <${id.slice(0, 15)}>, please 'Close' / 'Abort' / 'Delete' the current Job then create a new Job and make sure you only do 'PUT' once on a given Job.`,
      }],
    }));
    expect((await jobInfo(conn, id)).state).toBe('Open');
    expect((await setState(conn, id, 'Aborted')).body).toMatchObject({ id, state: 'Aborted' });
    expect(await setState(conn, id, 'Aborted')).toMatchObject({ status: 400, body: [{ errorCode: 'INVALIDJOBSTATE', message: 'Aborting already Aborted Job not allowed' }] });
    expect(await setState(conn, id, 'UploadComplete')).toMatchObject({ status: 400, body: [{ errorCode: 'INVALIDJOBSTATE' }] });

    const done = await runJob(conn, { object: 'Contact', operation: 'insert' }, 'LastName\nDone\n');
    expect(await call(conn, 'PUT', `/jobs/ingest/${done.id}/batches`, 'LastName\nLate\n')).toMatchObject({ status: 400, body: [{ errorCode: 'INVALIDJOBSTATE' }] });
    expect(await setState(conn, done.id, 'UploadComplete')).toMatchObject({ status: 400, body: [{ errorCode: 'INVALIDJOBSTATE' }] });
    expect(await setState(conn, done.id, 'Aborted')).toMatchObject({
      status: 400, body: [{ errorCode: 'INVALIDJOBSTATE', message: 'Aborting already Completed Job not allowed' }],
    });
    expect(await call(conn, 'DELETE', `/jobs/ingest/${done.id}`)).toMatchObject({ status: 204, text: '' });
    expect(await call(conn, 'GET', `/jobs/ingest/${done.id}`)).toMatchObject({
      status: 404, body: [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }],
    });
    expect(await call(conn, 'GET', `/jobs/ingest/${makeId('750', 999_999)}`)).toMatchObject({ status: 404 });
    expect(await call(conn, 'POST', `/jobs/ingest/${id}`, {})).toMatchObject({ status: 405, body: [{ errorCode: 'METHOD_NOT_ALLOWED' }] });
  });

  it('aborts a job mid-processing: processed chunks stay, the rest is in unprocessedrecords', async () => {
    const conn = await connect();
    const csv = contactsCsv(0, 500);
    const { id } = await createJob(conn, { object: 'Contact', operation: 'insert' });
    await upload(conn, id, csv);
    emulator.admin.pauseBulkProcessing();
    await setState(conn, id, 'UploadComplete');
    expect(emulator.admin.stepBulkProcessing(2)).toBe(2);
    expect(await jobInfo(conn, id)).toMatchObject({ state: 'InProgress', numberRecordsProcessed: 200 });
    const aborted = await setState(conn, id, 'Aborted');
    expect(aborted.body).toMatchObject({ id, state: 'Aborted' });
    expect(emulator.admin.stepBulkProcessing(5)).toBe(0);
    emulator.admin.resumeBulkProcessing();

    expect(await jobInfo(conn, id)).toMatchObject({ state: 'Aborted', numberRecordsProcessed: 200, numberRecordsFailed: 0 });
    expect(rowsOf(await results(conn, id, 'successfulResults'))).toHaveLength(200);
    const unprocessed = await results(conn, id, 'unprocessedrecords');
    expect(unprocessed.split('\n')[0]).toBe('"Banyan_Id__c","FirstName","LastName"');
    expect(rowsOf(unprocessed)).toEqual(Array.from({ length: 300 }, (_, k) => [`user-${200 + k}`, `F${200 + k}`, `Person ${200 + k}`]));
    expect(await count(conn, 'SELECT COUNT() FROM Contact')).toBe(200);

    // A job aborted while Open never ran: every uploaded row is unprocessed.
    const open = await createJob(conn, { object: 'Contact', operation: 'insert' });
    await upload(conn, open.id, contactsCsv(0, 3));
    await setState(conn, open.id, 'Aborted');
    expect(rowsOf(await results(conn, open.id, 'unprocessedrecords'))).toHaveLength(3);
    expect(rowsOf(await results(conn, open.id, 'successfulResults'))).toHaveLength(0);
  });

  it('refuses jobs Salesforce refuses', async () => {
    const conn = await connect();
    const bad = (job: Record<string, unknown>) => call(conn, 'POST', '/jobs/ingest', job);
    expect(await bad({ object: 'Nope__c', operation: 'insert' })).toMatchObject({
      status: 400, body: [{ errorCode: 'INVALIDJOB', message: 'InvalidJob : Unable to find object: Nope__c' }],
    });
    expect(await bad({ object: 'Contact', operation: 'upsert' })).toMatchObject({
      status: 400, body: [{ errorCode: 'INVALIDJOB', message: 'InvalidJob : Field name provided,  does not match an External ID for Contact' }],
    });
    expect(await bad({ object: 'Contact', operation: 'upsert', externalIdFieldName: 'Email' })).toMatchObject({ status: 400, body: [{ errorCode: 'INVALIDJOB' }] });
    expect(await bad({ object: 'Contact', operation: 'merge' })).toMatchObject({
      status: 400, body: [{ errorCode: 'API_ERROR', message: "Invalid value: 'merge' supplied for property: 'operation'" }],
    });
    expect(await bad({ object: 'Contact', operation: 'insert', contentType: 'JSON' })).toMatchObject({ status: 400, body: [{ errorCode: 'API_ERROR' }] });
    expect(await bad({ object: 'Contact', operation: 'insert', columnDelimiter: 'COLON' })).toMatchObject({ status: 400, body: [{ errorCode: 'API_ERROR' }] });
    expect(await bad({ object: 'Contact', operation: 'insert', lineEnding: 'CR' })).toMatchObject({ status: 400, body: [{ errorCode: 'API_ERROR' }] });
    expect(emulator.admin.bulkJobs()).toEqual([]);
  });

  it('reads and writes the job\'s column delimiter and line ending; a header it cannot match fails the job', async () => {
    const conn = await connect();
    const csv = 'LastName|Description\r\nPipe|"one | two\r\nthree"\r\nQuote|"say ""hi"""\r\n';
    const job = await runJob(conn, { object: 'Contact', operation: 'insert', columnDelimiter: 'PIPE', lineEnding: 'CRLF' }, csv);
    expect(job).toMatchObject({ columnDelimiter: 'PIPE', lineEnding: 'CRLF', numberRecordsProcessed: 2, numberRecordsFailed: 0 });
    const successful = await results(conn, job.id, 'successfulResults');
    expect(successful).toMatch(/^"sf__Id"\|"sf__Created"\|"LastName"\|"Description"\r\n"003[^"]+"\|"true"\|"Pipe"\|"one \| two\r\nthree"\r\n"003[^"]+"\|"true"\|"Quote"\|"say ""hi"""\r\n$/);
    const stored = await conn.query<{ Description: string }>("SELECT Description FROM Contact WHERE LastName = 'Pipe'");
    expect(stored.records[0]?.Description).toBe('one | two\r\nthree');

    // An LF file in a CRLF job is one long row: its header names no field.
    const mismatch = await runJob(conn, { object: 'Contact', operation: 'insert', lineEnding: 'CRLF' }, 'LastName\nX\n', 'Failed');
    expect(mismatch.errorMessage).toBe('InvalidBatch : Field name not found : LastName\nX\n');
    const unknown = await runJob(conn, { object: 'Contact', operation: 'insert' }, 'LastName,Shoe_Size__c\nX,42\n', 'Failed');
    expect(unknown).toMatchObject({ errorMessage: 'InvalidBatch : Field name not found : Shoe_Size__c', numberRecordsProcessed: 0 });
    expect(rowsOf(await results(conn, unknown.id, 'unprocessedrecords'))).toEqual([['X', '42']]);
    const spaced = await runJob(conn, { object: 'Contact', operation: 'insert' }, 'FirstName,LastName\n"John", "Smith"\n', 'Failed');
    expect(spaced.errorMessage).toMatch(/^InvalidBatch : Failed to parse the CSV data: Invalid Opening Quote/);
    expect(await count(conn, 'SELECT COUNT() FROM Contact')).toBe(2);
  });

  it('lists all jobs a thousand at a time with the documented paging fields', async () => {
    const conn = await connect();
    const ids: string[] = [];
    for (let i = 0; i < 1001; i++) ids.push((await createJob(conn, { object: 'Account', operation: 'insert' })).id);
    const first = await call(conn, 'GET', '/jobs/ingest');
    const page = first.body as { done: boolean; records: Record<string, unknown>[]; nextRecordsUrl: string | null };
    expect(page.done).toBe(false);
    expect(page.records).toHaveLength(1000);
    expect(page.records[0]).toEqual({
      id: ids[0], operation: 'insert', object: 'Account', createdById: expect.stringMatching(/^005/), createdDate: expect.any(String),
      systemModstamp: expect.any(String), state: 'Open', concurrencyMode: 'Parallel', contentType: 'CSV', apiVersion: 62,
      jobType: 'V2Ingest', contentUrl: `services/data/v62.0/jobs/ingest/${ids[0]}/batches`, lineEnding: 'LF', columnDelimiter: 'COMMA',
    });
    expect(page.nextRecordsUrl).toBe(`/services/data/v62.0/jobs/ingest?queryLocator=${ids[1000]}`);
    const second = await fetch(`${emulator.url}${page.nextRecordsUrl}`, { headers: { Authorization: `Bearer ${conn.accessToken}` } });
    expect(await second.json()).toEqual({ done: true, records: [expect.objectContaining({ id: ids[1000] })], nextRecordsUrl: null });
    expect((await call(conn, 'GET', '/jobs/ingest?jobType=Classic')).body).toEqual({ done: true, records: [], nextRecordsUrl: null });
    expect((await call(conn, 'GET', '/jobs/ingest?jobType=V2Ingest&queryLocator=' + ids[1000])).body).toMatchObject({ done: true, records: [{ id: ids[1000] }] });
  });

  it('serves the jobs and the processing controls on the admin endpoint', async () => {
    const conn = await connect();
    const admin = (method: string, path: string, body?: unknown) =>
      fetch(`${emulator.url}/__admin/${path}`, { method, ...(body ? { body: JSON.stringify(body) } : {}) }).then((r) => r.json());
    expect(await admin('POST', 'bulk/pause')).toMatchObject({ bulk: { paused: true, jobs: 0, pending: 0 } });
    const { id } = await createJob(conn, { object: 'Contact', operation: 'insert' });
    await upload(conn, id, contactsCsv(0, 3));
    await setState(conn, id, 'UploadComplete');
    expect(await admin('GET', 'bulk-jobs')).toEqual([expect.objectContaining({ id, state: 'UploadComplete' })]);
    expect(await admin('POST', 'bulk/step', { steps: 1 })).toMatchObject({ bulk: { pending: 1 } });
    expect(await admin('GET', 'bulk-jobs')).toEqual([expect.objectContaining({ id, state: 'InProgress' })]);
    expect(await admin('POST', 'bulk/resume')).toMatchObject({ bulk: { paused: false } });
    await waitForState(conn, id, 'JobComplete');
    expect(await admin('POST', 'bulk-usage', { batchesUsed: 10 })).toMatchObject({ bulk: { batches: { used: 10, max: 15000 } } });
  });
});

describe('Bulk API 2.0 ingest: limits and API usage', () => {
  it('counts each Bulk API call as one API request, and processing as none', async () => {
    const conn = await connect();
    const used = (answer: Answer) => Number(/api-usage=(\d+)\//.exec(answer.limitInfo ?? '')?.[1]);
    const created = await call(conn, 'POST', '/jobs/ingest', { object: 'Contact', operation: 'insert' });
    const id = (created.body as JobInfo).id;
    const start = used(created);
    const put = await call(conn, 'PUT', `/jobs/ingest/${id}/batches`, contactsCsv(0, 1000));
    const close = await setState(conn, id, 'UploadComplete');
    await waitForState(conn, id, 'JobComplete');
    const results1 = await call(conn, 'GET', `/jobs/ingest/${id}/successfulResults`);
    const info = await call(conn, 'GET', `/jobs/ingest/${id}`);
    expect([used(put), used(close)]).toEqual([start + 1, start + 2]);
    // However many polls waitForState made, the next two calls count one each: 1,000 records cost none.
    expect(used(info)).toBe(used(results1) + 1);
    const limits = (await call(conn, 'GET', '/limits')).body as Record<string, { Max: number; Remaining: number }>;
    expect(limits.DailyApiRequests).toEqual({ Max: 100_000, Remaining: 100_000 - used(info) - 1 });

    emulator.admin.exhaustDailyApiLimit();
    expect(await call(conn, 'GET', `/jobs/ingest/${id}`)).toMatchObject({ status: 403, body: [{ errorCode: 'REQUEST_LIMIT_EXCEEDED' }] });
  });

  it('refuses an upload above the size limit, counted once base64-encoded', async () => {
    const conn = await connect({ bulk: { maxUploadBytes: 1000 } });
    const { id } = await createJob(conn, { object: 'Contact', operation: 'insert' });
    // Description holds 32,000 characters, so the record itself is valid.
    const csv = (bytes: number) => `Description,LastName\n${'x'.repeat(bytes - 24)},L\n`;
    expect(Buffer.byteLength(csv(751))).toBe(751);
    expect(await call(conn, 'PUT', `/jobs/ingest/${id}/batches`, csv(751))).toMatchObject({
      status: 400, body: [{ errorCode: 'CLIENTINPUTERROR', message: 'Failed to read request. Exceeded max size limit of 1000' }],
    });
    await upload(conn, id, csv(750));
    expect((await setState(conn, id, 'UploadComplete')).status).toBe(200);
    expect(await waitForState(conn, id, 'JobComplete')).toMatchObject({ numberRecordsProcessed: 1 });
  });

  it('counts DailyBulkApiBatches per 10,000 records and fails jobs once the daily allocations are spent', async () => {
    const conn = await connect();
    const limits = async () => ((await call(conn, 'GET', '/limits')).body as Record<string, { Max: number; Remaining: number }>).DailyBulkApiBatches;
    expect(await limits()).toEqual({ Max: 15000, Remaining: 15000 });
    const csv = ['Name', ...Array.from({ length: 10_001 }, (_, i) => `Account ${i}`)].join('\n');
    const big = await runJob(conn, { object: 'Account', operation: 'insert' }, csv);
    expect(big).toMatchObject({ numberRecordsProcessed: 10_001, numberRecordsFailed: 0 });
    expect(await limits()).toEqual({ Max: 15000, Remaining: 14998 });
    await runJob(conn, { object: 'Account', operation: 'insert' }, 'Name\n');
    expect(await limits()).toEqual({ Max: 15000, Remaining: 14998 });

    emulator.admin.setBulkUsage({ batchesUsed: 15000 });
    expect(await limits()).toEqual({ Max: 15000, Remaining: 0 });
    const refused = await runJob(conn, { object: 'Account', operation: 'insert' }, 'Name\nLate\n', 'Failed');
    expect(refused.errorMessage).toMatch(/^ExceededQuota : /);
    expect(refused.numberRecordsProcessed).toBe(0);
    expect(rowsOf(await results(conn, refused.id, 'unprocessedrecords'))).toEqual([['Late']]);

    emulator.admin.setBulkUsage({ batchesUsed: 0, recordsMax: 10_002 });
    const over = await runJob(conn, { object: 'Account', operation: 'insert' }, 'Name\nA\nB\n', 'Failed');
    expect(over.errorMessage).toMatch(/^ExceededQuota : The daily limit of 10002 Bulk API records/);
    expect(await count(conn, 'SELECT COUNT() FROM Account')).toBe(10_001);
  });
});

describe('Bulk API 2.0 ingest: jsforce as a client', () => {
  it('loads with conn.bulk2.loadAndWaitForResults: upsert by external id with a failure, nulls, and CDC from Bulk', async () => {
    const conn = await connect({}, { client: 'banyan-sink' });
    conn.bulk2.pollInterval = 20;
    const records = Array.from({ length: 1000 }, (_, i) => ({ Banyan_Id__c: `user-${i}`, LastName: `Person ${i}`, Email: `p${i}@example.com` }));
    records[500] = { Banyan_Id__c: 'user-500', LastName: null as unknown as string, Email: 'p500@example.com' };
    const first = await conn.bulk2.loadAndWaitForResults({ object: 'Contact', operation: 'upsert', externalIdFieldName: 'Banyan_Id__c', input: records });
    expect(first.successfulResults).toHaveLength(999);
    expect(first.successfulResults.every((r) => r.sf__Created === 'true')).toBe(true);
    expect(first.failedResults).toEqual([expect.objectContaining({
      sf__Id: '', sf__Error: 'REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --', Banyan_Id__c: 'user-500',
    })]);
    expect(first.unprocessedRecords).toEqual([]);

    // jsforce writes null as #N/A: the emails go.
    const second = await conn.bulk2.loadAndWaitForResults({
      object: 'Contact', operation: 'upsert', externalIdFieldName: 'Banyan_Id__c',
      input: [{ Banyan_Id__c: 'USER-1', Email: null }, { Banyan_Id__c: 'user-2', Email: null }],
    });
    expect(second.successfulResults.map((r) => r.sf__Created)).toEqual(['false', 'false']);
    const emails = await conn.query<{ Email: string | null }>("SELECT Email FROM Contact WHERE Banyan_Id__c IN ('user-1', 'user-2', 'user-3') ORDER BY Banyan_Id__c");
    expect(emails.records.map((r) => r.Email)).toEqual([null, null, 'p3@example.com']);

    const origins = new Set(headers().map((h) => h.changeOrigin));
    expect(origins).toEqual(new Set(['com/salesforce/api/bulkapi/62.0']));

    // The job object: open, upload, close, poll, results; and abort of another.
    const job = conn.bulk2.createJob({ object: 'Contact', operation: 'insert' });
    await job.open();
    await job.uploadData('LastName\nJob One\nJob Two\n');
    await job.close();
    await job.poll(20, 30_000);
    expect(job.getInfo()).toMatchObject({ state: 'JobComplete', numberRecordsProcessed: 2, jobType: 'V2Ingest' });
    const aborted = conn.bulk2.createJob({ object: 'Contact', operation: 'insert' });
    await aborted.open();
    await aborted.abort();
    expect(await conn.bulk2.job('ingest', { id: aborted.id }).check()).toMatchObject({ state: 'Aborted' });
    await job.delete();
    await expect(conn.bulk2.job('ingest', { id: job.id }).check()).rejects.toMatchObject({ errorCode: 'NOT_FOUND' });
  });
});
