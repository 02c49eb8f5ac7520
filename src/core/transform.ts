/**
 * A pure mapping from one input record to zero or more output records: no I/O, no clock, no state.
 * The runner around it consumes, produces and commits in one Kafka transaction.
 */
export type Transform<In, Out> = (input: In) => Out[];
