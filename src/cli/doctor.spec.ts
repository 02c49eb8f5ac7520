import { describe, expect, it } from 'vitest';
import { formatChecks } from './doctor';

describe('formatChecks', () => {
  it('lines up STATE and DETAIL whatever the names and details, wide and combining characters included', () => {
    const table = formatChecks([
      { name: 'kafka', ok: true, detail: '1 broker(s) at 127.0.0.1:19092' },
      { name: 'database:legacy_customers', ok: false, detail: 'postgres://app@db/crm: connect ECONNREFUSED 10.0.0.5:5432' },
      { name: 'database:顧客', ok: true, detail: 'mysql://root@127.0.0.1/顧客: 10.11.19-MariaDB' },
      { name: 'database:cafe\u0301', ok: false, detail: 'first line\nsecond line' },
      { name: 'salesforce🚀', ok: true, detail: '' },
    ]);
    expect(table.split('\n')).toEqual([
      'CHECK                      STATE  DETAIL',
      'kafka                      ok     1 broker(s) at 127.0.0.1:19092',
      'database:legacy_customers  FAIL   postgres://app@db/crm: connect ECONNREFUSED 10.0.0.5:5432',
      'database:顧客              ok     mysql://root@127.0.0.1/顧客: 10.11.19-MariaDB',
      'database:cafe\u0301              FAIL   first line second line',
      'salesforce🚀               ok',
    ]);
  });
});
