// WAL positions. PostgreSQL prints an LSN as two hexadecimal halves of a 64-bit byte position,
// "16/B374D848" = 0x16 << 32 | 0xB374D848. We keep them as plain numbers: exact up to 2^53 bytes
// (8 PiB of WAL), which no cluster reaches, and they subtract directly into a lag in bytes.

const LSN_PATTERN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;
const TWO_POW_32 = 0x1_0000_0000;

/** '16/B374D848' → 97500059720; throws on anything that is not an LSN. */
export function parseLsn(text: string): number {
  const match = LSN_PATTERN.exec(text.trim());
  if (!match) throw new Error(`not an LSN: ${JSON.stringify(text)}`);
  const value = parseInt(match[1]!, 16) * TWO_POW_32 + parseInt(match[2]!, 16);
  if (!Number.isSafeInteger(value)) throw new Error(`LSN beyond 2^53 bytes: ${text}`);
  return value;
}

/** Like parseLsn, but null stays null (SQL NULL, e.g. no WAL received yet). */
export function parseLsnOrNull(text: string | null | undefined): number | null {
  return text === null || text === undefined ? null : parseLsn(text);
}

/** A byte position → '16/B374D848', as PostgreSQL prints it (upper case, no leading zeros). */
export function formatLsn(position: number): string {
  if (!Number.isSafeInteger(position) || position < 0) throw new Error(`not a WAL position: ${position}`);
  const high = Math.floor(position / TWO_POW_32);
  const low = position % TWO_POW_32;
  return `${high.toString(16).toUpperCase()}/${low.toString(16).toUpperCase()}`;
}
