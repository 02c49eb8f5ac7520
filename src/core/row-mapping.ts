/**
 * How a sink writes the events of one legacy table: the reverse of a declarative import mapping
 * (src/transforms/mappings/reverse.ts builds it from the same config). The sink knows events and
 * columns through it, not the mapping's config.
 */
export interface RowMapping {
  /** The transform whose mapping this reverses. */
  name: string;
  /** That transform's input topic (a changelog topic), which names the table through its source. */
  from: string;
  /** The entity whose deleted event removes the row: the first block's. */
  rowEntity: string;
  blocks: RowMappingBlock[];
}

export interface RowMappingBlock {
  /** The changed event the block maps (UserChanged). */
  event: string;
  /** Its deleted event (UserDeleted), if the block has one. */
  deletedEvent?: string;
  entity: string;
  /** The event's key fields and the columns they come from, in key order. */
  key: Array<{ field: string; column: string }>;
  fields: RowMappingField[];
}

export interface RowMappingField {
  field: string;
  column: string;
  /** The column's value for an event value (the inverse of the import's conversions); throws a BadRecordError-like error with a code. */
  toColumn(value: unknown): unknown;
  /** Set when the import's conversions cannot be reversed (trim, case, a map two keys share a value of): why. */
  notWritable?: string;
}
