import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from './errors.js';

/** A request as the handlers see it: the body is read whole (JSON calls, and Bulk API CSV uploads). */
export interface EmulatorRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface EmulatorResponse {
  status: number;
  headers?: Record<string, string>;
  /** JSON-encoded unless `contentType` says otherwise and the body is a string. */
  body?: unknown;
  contentType?: string;
}

/** Above Bulk API 2.0's upload limit (150 MB once base64-encoded), which its own handler answers. */
const MAX_BODY_BYTES = 200 * 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, 'REQUEST_ENTITY_TOO_LARGE', 'Request body is too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function send(res: ServerResponse, response: EmulatorResponse): void {
  if (res.writableEnded || res.destroyed) return;
  const headers: Record<string, string> = { ...response.headers };
  let payload: string | undefined;
  if (response.body !== undefined) {
    const raw = typeof response.body === 'string' && response.contentType !== undefined;
    payload = raw ? (response.body as string) : toJson(response.body);
    headers['Content-Type'] = response.contentType ?? 'application/json;charset=UTF-8';
  }
  res.writeHead(response.status, headers);
  res.end(payload);
}

const BIGINT_MARK = '\u0000bigint:';

/** JSON text in which bigints (change events' commitNumber) are plain JSON numbers, digit for digit. */
export function toJson(value: unknown): string {
  let marked = false;
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'bigint') return v;
    marked = true;
    return `${BIGINT_MARK}${v}`;
  });
  return marked ? text.replace(/"\\u0000bigint:(-?\d+)"/g, '$1') : text;
}

export function json(status: number, body: unknown, headers?: Record<string, string>): EmulatorResponse {
  return { status, body, ...(headers ? { headers } : {}) };
}

/** Parses a JSON request body, failing as Salesforce does on malformed input. */
export function parseJsonBody(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (err) {
    throw new ApiError(400, 'JSON_PARSER_ERROR', `The request body is not valid JSON: ${(err as Error).message}`);
  }
}

export function expectObject(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError(400, 'JSON_PARSER_ERROR', `Expected a JSON object for ${what}`);
  }
  return value as Record<string, unknown>;
}
