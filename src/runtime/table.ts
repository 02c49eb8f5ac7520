/**
 * Plain-text tables for the CLI (`banyan doctor`, `banyan status`): columns padded to the widest
 * cell as a terminal shows it, so a name in CJK, an emoji or an accent written as a combining mark
 * does not push the columns after it out of line.
 */
export function formatTable(header: string[], rows: string[][]): string {
  // A cell is one line: a newline or tab inside a detail would break every column after it.
  const lines = [header, ...rows].map((row) => row.map((cell) => cell.replace(/[\r\n\t]+/g, ' ')));
  const widths = header.map((_, i) => Math.max(...lines.map((row) => displayWidth(row[i] ?? ''))));
  return lines
    .map((row) => row.map((cell, i) => cell + ' '.repeat(widths[i]! - displayWidth(cell))).join('  ').trimEnd())
    .join('\n');
}

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
const ZERO_WIDTH = /^[\p{Mark}\p{Default_Ignorable_Code_Point}\p{Control}]/u;
const EMOJI = /\p{Emoji_Presentation}|\p{Extended_Pictographic}\uFE0F/u;

/** Columns a terminal gives `text`: per grapheme 2 if wide (East Asian wide, emoji), 0 if invisible, else 1. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const { segment } of segmenter.segment(text)) {
    if (ZERO_WIDTH.test(segment)) continue;
    width += EMOJI.test(segment) || isWide(segment.codePointAt(0)!) ? 2 : 1;
  }
  return width;
}

/** East Asian Wide and Fullwidth ranges (Unicode 15, UAX #11), the ones text in names uses. */
function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) || // Hangul Jamo
    (cp >= 0x2e80 && cp <= 0x303e) || // CJK radicals, punctuation
    (cp >= 0x3041 && cp <= 0x33ff) || // kana, CJK compatibility
    (cp >= 0x3400 && cp <= 0x4dbf) || // CJK extension A
    (cp >= 0x4e00 && cp <= 0x9fff) || // CJK unified ideographs
    (cp >= 0xa000 && cp <= 0xa4cf) || // Yi
    (cp >= 0xa960 && cp <= 0xa97f) || // Hangul Jamo extended A
    (cp >= 0xac00 && cp <= 0xd7a3) || // Hangul syllables
    (cp >= 0xf900 && cp <= 0xfaff) || // CJK compatibility ideographs
    (cp >= 0xfe30 && cp <= 0xfe4f) || // CJK compatibility forms
    (cp >= 0xff00 && cp <= 0xff60) || // fullwidth forms
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x20000 && cp <= 0x3fffd) // CJK extensions B and beyond
  );
}
