/** API usage as Salesforce reports it in `Sforce-Limit-Info: api-usage=18/15000`. */
export interface ApiUsage {
  used: number;
  max: number;
}

/**
 * Reads the org's daily API usage from a `Sforce-Limit-Info` header. The header may list several
 * limits (`api-usage=…, per-app-api-usage=…`); only the org-wide `api-usage` is taken.
 */
export function parseLimitInfo(header: string | string[] | undefined): ApiUsage | undefined {
  const text = Array.isArray(header) ? header.join(',') : header;
  if (!text) return undefined;
  for (const part of text.split(',')) {
    const match = /^\s*api-usage\s*=\s*(\d+)\s*\/\s*(\d+)\s*$/i.exec(part);
    if (match) return { used: Number(match[1]), max: Number(match[2]) };
  }
  return undefined;
}
