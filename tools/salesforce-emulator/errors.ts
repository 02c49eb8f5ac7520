/** Salesforce's REST error entry, as found in the JSON array every failing call returns. */
export interface ApiErrorBody {
  message: string;
  errorCode: string;
  fields?: string[];
}

/** Per-record error inside sObject Collections results (note `statusCode`, not `errorCode`). */
export interface RecordErrorBody {
  statusCode: string;
  message: string;
  fields: string[];
}

/**
 * An error answered as Salesforce does: an HTTP status and `[{message, errorCode, fields}]`.
 * Record (DML) errors carry `fields`, even empty; protocol errors (session, query, limits) have none.
 * Thrown anywhere below the HTTP layer; the router turns it into the response.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly fields?: string[],
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): ApiErrorBody[] {
    return [{ message: this.message, errorCode: this.errorCode, ...(this.fields ? { fields: this.fields } : {}) }];
  }

  toRecordError(): RecordErrorBody {
    return { statusCode: this.errorCode, message: this.message, fields: this.fields ?? [] };
  }
}

export const notFound = (message = 'The requested resource does not exist'): ApiError =>
  new ApiError(404, 'NOT_FOUND', message);

export const sessionExpired = (): ApiError =>
  new ApiError(401, 'INVALID_SESSION_ID', 'Session expired or invalid');

/** OAuth endpoint errors use a different shape: `{error, error_description}`. */
export class OAuthError extends Error {
  constructor(
    readonly error: string,
    readonly description: string,
    readonly status = 400,
  ) {
    super(`${error}: ${description}`);
    this.name = 'OAuthError';
  }
}
