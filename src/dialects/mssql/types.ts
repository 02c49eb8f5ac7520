import type { Column, ColumnKind } from '../dialect';

/** One row of the describeTable catalog query (sys.columns joined to sys.types). */
export interface CatalogColumn {
  name: string;
  /** sys.types.name of the column's own type (an alias type's name for alias types). */
  typeName: string;
  /** The system type an alias type (or sysname) is built on; null for CLR types. */
  baseTypeName: string | null;
  isAssemblyType: boolean;
  /** sys.columns.max_length: bytes, -1 for (max). */
  maxLength: number;
  precision: number;
  scale: number;
  nullable: boolean;
}

/** Maps a catalog row to the column's SQL type (with its parameters) and its ColumnKind. */
export function columnFromCatalog(row: CatalogColumn): Column {
  // Alias types (and sysname) behave as their base type; CLR types (hierarchyid, geography…) have none.
  const type = (row.isAssemblyType ? row.typeName : (row.baseTypeName ?? row.typeName)).toLowerCase();
  const { sqlType, kind } = mapType(type, row);
  return { name: row.name, sqlType, type: kind, nullable: row.nullable };
}

function mapType(type: string, row: CatalogColumn): { sqlType: string; kind: ColumnKind } {
  const length = (perChar: number): number | undefined => (row.maxLength < 0 ? undefined : row.maxLength / perChar);
  const sized = (perChar: number): string => `${type}(${row.maxLength < 0 ? 'max' : row.maxLength / perChar})`;
  switch (type) {
    case 'bit':
      return { sqlType: type, kind: { kind: 'boolean' } };
    case 'tinyint':
    case 'smallint':
    case 'int':
      return { sqlType: type, kind: { kind: 'int' } };
    case 'bigint':
      return { sqlType: type, kind: { kind: 'long' } };
    case 'decimal':
    case 'numeric':
      return {
        sqlType: `${type}(${row.precision},${row.scale})`,
        kind: { kind: 'decimal', precision: row.precision, scale: row.scale },
      };
    case 'money':
      return { sqlType: type, kind: { kind: 'decimal', precision: 19, scale: 4 } };
    case 'smallmoney':
      return { sqlType: type, kind: { kind: 'decimal', precision: 10, scale: 4 } };
    case 'real':
      return { sqlType: type, kind: { kind: 'float' } };
    case 'float':
      return { sqlType: type, kind: { kind: 'double' } };
    case 'char':
    case 'varchar':
      return { sqlType: sized(1), kind: withLength({ kind: 'string' }, length(1)) };
    case 'nchar':
    case 'nvarchar':
      return { sqlType: sized(2), kind: withLength({ kind: 'string', unicode: true }, length(2)) };
    case 'text':
      return { sqlType: type, kind: { kind: 'string' } };
    case 'ntext':
      return { sqlType: type, kind: { kind: 'string', unicode: true } };
    case 'xml':
      return { sqlType: type, kind: { kind: 'string' } };
    case 'uniqueidentifier':
      return { sqlType: type, kind: { kind: 'uuid' } };
    case 'binary':
    case 'varbinary':
      return { sqlType: sized(1), kind: { kind: 'bytes' } };
    case 'image':
    case 'timestamp': // how sys.types names rowversion
      return { sqlType: type, kind: { kind: 'bytes' } };
    case 'date':
      return { sqlType: type, kind: { kind: 'date' } };
    case 'time':
      return { sqlType: `time(${row.scale})`, kind: { kind: 'time', precision: row.scale } };
    case 'datetime':
      return { sqlType: type, kind: { kind: 'timestamp', precision: 3 } };
    case 'smalldatetime':
      return { sqlType: type, kind: { kind: 'timestamp', precision: 0 } };
    case 'datetime2':
      return { sqlType: `datetime2(${row.scale})`, kind: { kind: 'timestamp', precision: row.scale } };
    case 'datetimeoffset':
      return { sqlType: `datetimeoffset(${row.scale})`, kind: { kind: 'timestamptz', precision: row.scale } };
    default:
      return { sqlType: type, kind: { kind: 'other', sqlType: type } };
  }
}

function withLength(kind: ColumnKind & { kind: 'string' }, maxLength: number | undefined): ColumnKind {
  return maxLength === undefined ? kind : { ...kind, maxLength };
}

/** The type name without parameters: 'decimal(12,2)' → 'decimal'. */
export function baseType(column: Column): string {
  return column.sqlType.toLowerCase().replace(/\(.*$/, '').trim();
}

/** text, ntext and image: AFTER triggers cannot read them from `inserted` and `deleted`. */
export function isLegacyLob(column: Column): boolean {
  return ['text', 'ntext', 'image'].includes(baseType(column));
}

/**
 * The SQL expression that turns the value `value` of `column` into its text form (dialect.ts,
 * ColumnKind), or NULL for NULL. The trigger's images and the snapshot's rows both use it, so a
 * row reads the same whichever way it arrives. `value` is a column reference (`[i].[c]`): the
 * spatial types and hierarchyid call methods on it. Every form is written out in
 * docs/dialect-mssql.md "Text forms"; nothing is cut short (strings convert to (max) types).
 */
export function textExpression(column: Column, value: string): string {
  switch (baseType(column)) {
    case 'bit':
      return `CASE ${value} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END`;
    case 'tinyint':
    case 'smallint':
    case 'int':
    case 'bigint':
      return `CONVERT(VARCHAR(20), ${value})`;
    case 'decimal':
    case 'numeric':
      // Every digit of the scale, no exponent: decimal(38,38) is at most 41 characters.
      return `CONVERT(VARCHAR(50), ${value})`;
    case 'money':
    case 'smallmoney':
      // Four decimals, as money's style 2 prints them (its default style prints two).
      return `CONVERT(VARCHAR(50), CONVERT(DECIMAL(19,4), ${value}))`;
    case 'real':
      // Style 3 prints a real as 17 digits of its widening to float ('1.0000000149011612e-001' for
      // 0.1): the shortest of styles 0 (6 digits) and 1 (8 digits) that reads back as the same real.
      return shortestReal(value);
    case 'float':
      // Style 3 (SQL Server 2016+) is the lossless one: every distinct value prints distinctly.
      return `CONVERT(VARCHAR(30), ${value}, 3)`;
    case 'char':
    case 'varchar':
    case 'nchar':
    case 'nvarchar':
      return value;
    case 'text':
    case 'ntext':
      return `CONVERT(NVARCHAR(MAX), ${value})`;
    case 'xml':
      // SQL Server's serialization of the stored document (no XML declaration; no insignificant white space).
      return `CONVERT(NVARCHAR(MAX), ${value})`;
    case 'uniqueidentifier':
      return `LOWER(CONVERT(CHAR(36), ${value}))`;
    case 'binary':
    case 'varbinary':
    case 'image':
    case 'timestamp':
      // Style 2: hex without the 0x prefix. image converts to binary types only, hence the inner CONVERT.
      return `LOWER(CONVERT(VARCHAR(MAX), CONVERT(VARBINARY(MAX), ${value}), 2))`;
    case 'date':
      return `CONVERT(CHAR(10), ${value}, 23)`;
    case 'time':
    case 'datetime':
    case 'datetime2':
      // Style 121 prints exactly the type's fractional digits ('.fffffff' for datetime2(7), none for
      // scale 0; datetime's 1/300 s ticks as '.000', '.003', '.007'), whatever the compatibility
      // level or language. Style 126 would drop a zero fraction of datetime.
      return `CONVERT(VARCHAR(27), ${value}, 121)`;
    case 'smalldatetime':
      return `CONVERT(VARCHAR(19), ${value}, 120)`;
    case 'datetimeoffset':
      // The instant in UTC (ColumnKind timestamptz, Avro timestamp-*): the offset is not kept.
      return `CONVERT(VARCHAR(27), CONVERT(DATETIME2(${precisionOf(column)}), SWITCHOFFSET(${value}, '+00:00')), 121)`;
    case 'sql_variant':
      return variantText(value);
    case 'geography':
    case 'geometry':
      // 'SRID=4326;POINT (-122.349 47.651 10.3 12)': the SRID, then the WKT with any Z and M values.
      return `CASE WHEN ${value} IS NULL THEN NULL ELSE N'SRID=' + CONVERT(NVARCHAR(11), ${value}.STSrid) + N';' + ${value}.AsTextZM() END`;
    case 'hierarchyid':
      // '/1/2.5/3/'. At most 892 bytes, which print as well under ToString's 4,000 characters.
      return `${value}.ToString()`;
    default:
      // Other CLR types print through their ToString().
      return `CONVERT(NVARCHAR(MAX), ${value})`;
  }
}

/**
 * A real as the first of float styles 0 and 1 whose text converts back to the same real, else
 * style 3 (lossless). TRY_CONVERT, because a rounded text of a real near its largest value may
 * not convert back, and a failed conversion in the trigger would fail the legacy write. A NULL
 * matches no WHEN, and style 3 of NULL is NULL.
 */
function shortestReal(value: string): string {
  const styled = (style: number) => `CONVERT(VARCHAR(30), ${value}, ${style})`;
  const when = (style: number) => `WHEN TRY_CONVERT(REAL, ${styled(style)}) = ${value} THEN ${styled(style)}`;
  return `CASE ${when(0)} ${when(1)} ELSE ${styled(3)} END`;
}

/** What a sql_variant may hold (sql_variant docs), with the column each base type is printed as. */
const VARIANT_BASES: Array<[string, Column]> = (
  [
    ['bit', 'bit', { kind: 'boolean' }],
    ['tinyint', 'tinyint', { kind: 'int' }],
    ['smallint', 'smallint', { kind: 'int' }],
    ['int', 'int', { kind: 'int' }],
    ['bigint', 'bigint', { kind: 'long' }],
    ['money', 'money', { kind: 'decimal', precision: 19, scale: 4 }],
    ['smallmoney', 'smallmoney', { kind: 'decimal', precision: 10, scale: 4 }],
    ['real', 'real', { kind: 'float' }],
    ['float', 'float', { kind: 'double' }],
    ['uniqueidentifier', 'uniqueidentifier', { kind: 'uuid' }],
    ['binary', 'varbinary(8000)', { kind: 'bytes' }],
    ['varbinary', 'varbinary(8000)', { kind: 'bytes' }],
    ['date', 'date', { kind: 'date' }],
    ['time', 'time(7)', { kind: 'time', precision: 7 }],
    ['datetime', 'datetime', { kind: 'timestamp', precision: 3 }],
    ['smalldatetime', 'smalldatetime', { kind: 'timestamp', precision: 0 }],
    ['datetime2', 'datetime2(7)', { kind: 'timestamp', precision: 7 }],
    ['datetimeoffset', 'datetimeoffset(7)', { kind: 'timestamptz', precision: 7 }],
  ] as Array<[string, string, ColumnKind]>
).map(([base, sqlType, type]) => [base, { name: base, sqlType, type, nullable: true }]);

/**
 * A sql_variant as '<base type>:<text>', e.g. 'datetime:2024-01-02 03:04:05.997', 'int:42',
 * 'nvarchar:abc': the base type as SQL_VARIANT_PROPERTY names it, then the value converted to that
 * type and printed as a column of it (time, datetime2 and datetimeoffset at scale 7). A bare
 * CONVERT of the variant would print it in its base type's default style, which drops a
 * datetime's seconds and a float's digits, and NVARCHAR(4000) would cut an 8,000-character varchar.
 */
function variantText(value: string): string {
  const base = `CONVERT(NVARCHAR(128), SQL_VARIANT_PROPERTY(${value}, 'BaseType'))`;
  const branches = VARIANT_BASES.map(([name, column]) => {
    return `WHEN N'${name}' THEN ${textExpression(column, `CONVERT(${column.sqlType.toUpperCase()}, ${value})`)}`;
  });
  // decimal and numeric print their own scale, which a CONVERT to a decimal type would have to name.
  // char, varchar, nchar and nvarchar (at most 8,000 bytes) go whole through the ELSE, padding kept.
  branches.push(`WHEN N'decimal' THEN CONVERT(VARCHAR(50), ${value})`, `WHEN N'numeric' THEN CONVERT(VARCHAR(50), ${value})`);
  // One line, like every text expression: an image is one SELECT list.
  return `CASE WHEN ${value} IS NULL THEN NULL ELSE ${base} + N':' + CASE ${base} ${branches.join(' ')} ELSE CONVERT(NVARCHAR(MAX), ${value}) END END`;
}

const PARAMETERISED_TYPE = /^[a-z][a-z0-9]*(\((\d+|max)(,\d+)?\))?$/;

/**
 * SQL that turns one `?` parameter holding the text form of `column` back into the column's own
 * type, so a keyset predicate compares like with like and can seek the primary key's index.
 */
export function keyParameter(column: Column): string {
  const type = column.sqlType.toLowerCase().replace(/\s+/g, '');
  if (!PARAMETERISED_TYPE.test(type)) throw unsupportedKey(column);
  switch (baseType(column)) {
    case 'bit':
    case 'tinyint':
    case 'smallint':
    case 'int':
    case 'bigint':
    case 'decimal':
    case 'numeric':
    case 'money':
    case 'smallmoney':
    case 'real':
    case 'float':
    case 'char':
    case 'varchar':
    case 'nchar':
    case 'nvarchar':
    case 'uniqueidentifier':
    case 'time':
    case 'hierarchyid':
      return `CONVERT(${type.toUpperCase()}, ?)`;
    case 'binary':
    case 'varbinary':
      return `CONVERT(${type.toUpperCase()}, ?, 2)`;
    case 'timestamp':
      return 'CONVERT(BINARY(8), ?, 2)';
    case 'date':
      return 'CONVERT(DATE, ?, 23)';
    case 'datetime':
    case 'datetime2':
      return `CONVERT(${type.toUpperCase()}, ?, 121)`;
    case 'smalldatetime':
      return 'CONVERT(SMALLDATETIME, ?, 120)';
    case 'datetimeoffset':
      return `TODATETIMEOFFSET(CONVERT(DATETIME2(${precisionOf(column)}), ?, 121), '+00:00')`;
    default:
      throw unsupportedKey(column);
  }
}

function precisionOf(column: Column): number {
  const precision = 'precision' in column.type ? column.type.precision : Number.NaN;
  if (!Number.isInteger(precision) || precision < 0 || precision > 7) {
    throw new Error(`column "${column.name}" (${column.sqlType}) has no fractional-second precision between 0 and 7`);
  }
  return precision;
}

function unsupportedKey(column: Column): Error {
  return new Error(`primary-key column "${column.name}" has type ${column.sqlType}, which a snapshot cannot page by`);
}
