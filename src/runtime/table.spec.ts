import { describe, expect, it } from 'vitest';
import { displayWidth, formatTable } from './table';

describe('displayWidth', () => {
  it('counts the columns a terminal gives each grapheme', () => {
    expect(displayWidth('users')).toBe(5);
    expect(displayWidth('顧客')).toBe(4);
    expect(displayWidth('고객')).toBe(4);
    expect(displayWidth('ｆｕｌｌ')).toBe(8);
    expect(displayWidth('cafe\u0301')).toBe(4);
    expect(displayWidth('café')).toBe(4);
    expect(displayWidth('🚀')).toBe(2);
    expect(displayWidth('👩‍💻')).toBe(2);
    expect(displayWidth('🇩🇪')).toBe(2);
    expect(displayWidth('a\u200bb')).toBe(2);
  });
});

describe('formatTable', () => {
  it('pads every column to its widest cell and trims the end of each line', () => {
    expect(formatTable(['A', 'B', 'C'], [['顧客', 'x', ''], ['abcdef', 'yy', 'z']]).split('\n')).toEqual([
      'A       B   C',
      '顧客    x',
      'abcdef  yy  z',
    ]);
  });
});
