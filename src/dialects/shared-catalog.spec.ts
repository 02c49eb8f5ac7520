import { describe, expect, it } from 'vitest';
import { parseTableName, writtenName } from './shared-catalog';

describe('table names as users write them', () => {
  it('reads plain names, the first dot separating schema and name', () => {
    expect(parseTableName('Users')).toEqual({ name: 'Users' });
    expect(parseTableName('dbo.Users')).toEqual({ schema: 'dbo', name: 'Users' });
    expect(parseTableName('dbo.Order.Lines')).toEqual({ schema: 'dbo', name: 'Order.Lines' });
  });

  it('reads each part quoted the way its database quotes it, a dot inside a quoted part kept', () => {
    expect(parseTableName('[dbo].[Order.Lines]')).toEqual({ schema: 'dbo', name: 'Order.Lines' });
    expect(parseTableName('dbo.[Order.Lines]')).toEqual({ schema: 'dbo', name: 'Order.Lines' });
    expect(parseTableName('[dbo.Order].Lines')).toEqual({ schema: 'dbo.Order', name: 'Lines' });
    expect(parseTableName('"public"."Order.Lines"')).toEqual({ schema: 'public', name: 'Order.Lines' });
    expect(parseTableName('`shop`.`order.lines`')).toEqual({ schema: 'shop', name: 'order.lines' });
    expect(parseTableName('[Order.Lines]')).toEqual({ name: 'Order.Lines' });
  });

  it('reads a doubled closing quote as the character itself', () => {
    expect(parseTableName('[dbo].[a]]b]')).toEqual({ schema: 'dbo', name: 'a]b' });
    expect(parseTableName('"we""ird"')).toEqual({ name: 'we"ird' });
  });

  it('takes a name whose quotes do not read that way as written, split at its first dot (the database then says it does not exist)', () => {
    expect(parseTableName('[dbo].[Order')).toEqual({ schema: '[dbo]', name: '[Order' });
    expect(parseTableName('s."order_lines";DROP TABLE s.canary;--')).toEqual({ schema: 's', name: '"order_lines";DROP TABLE s.canary;--' });
    expect(parseTableName('[a].[b].[c]')).toEqual({ schema: '[a]', name: '[b].[c]' });
  });

  it('writes a name for messages as the config has it, schema and name joined by a dot', () => {
    expect(writtenName({ schema: 'dbo', name: 'Users' })).toBe('dbo.Users');
    expect(writtenName({ name: 'Users' })).toBe('Users');
  });
});
