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
 * row reads the same whichever way it arrives.
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
      return `CONVERT(VARCHAR(50), ${value})`;
    case 'money':
    case 'smallmoney':
      // money's own styles print 2 or 4 decimals by style; as decimal(19,4) it prints its full scale.
      return `CONVERT(VARCHAR(50), CONVERT(DECIMAL(19,4), ${value}))`;
    case 'real':
    case 'float':
      // Style 3 (SQL Server 2016+) is the lossless one: every distinct value prints distinctly.
      return `CONVERT(VARCHAR(30), ${value}, 3)`;
    case 'char':
    case 'varchar':
    case 'nchar':
    case 'nvarchar':
      return value;
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
      // scale 0), whatever the database's compatibility level or language.
      return `CONVERT(VARCHAR(27), ${value}, 121)`;
    case 'smalldatetime':
      return `CONVERT(VARCHAR(19), ${value}, 120)`;
    case 'datetimeoffset':
      return `CONVERT(VARCHAR(27), CONVERT(DATETIME2(${precisionOf(column)}), SWITCHOFFSET(${value}, '+00:00')), 121)`;
    case 'sql_variant':
      return `CONVERT(NVARCHAR(4000), ${value})`;
    default:
      // text, ntext, xml and CLR types (hierarchyid, geography… print through ToString()).
      return `CONVERT(NVARCHAR(MAX), ${value})`;
  }
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
