import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted and `undefined` members left out (as `JSON.stringify` leaves them
 * out), so equal values give equal text whatever their key order: what content hashes are taken over.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** SHA-256 (hex) of a text. A pure function: no I/O, no clock. */
export const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');
