import { crc32 } from 'node:zlib';

/**
 * A CRC-32 on every line of an append-only JSON-lines file (the order journal, the paper
 * broker's ledger), so a flipped byte is found and named, never read as a different record.
 * The checksum is the line's last key, so every line stays one JSON object:
 *
 *     {"id":"AAPL-m5ffaj40-b64b40b001fc58","state":"submitted","at":1735828200000,"crc32":"0c1f5a3e"}
 *
 * It covers every byte of the line before `,"crc32":` (the record as `JSON.stringify` wrote
 * it, without its closing brace), as 8 lowercase hex digits of zlib's CRC-32 (IEEE, the one of
 * gzip and PNG: `python3 -c 'import zlib; print(f"{zlib.crc32(b"…"):08x}")'` checks a line by
 * hand). A single flipped byte anywhere in a line — record, key, digits, braces — always makes
 * the line fail: CRC-32 detects every burst error up to 32 bits, and a byte that breaks the
 * suffix leaves a line without a checksum.
 */

/** The key each checksummed line ends with. */
export const CHECKSUM_KEY = 'crc32';

const SUFFIX_START = `,"${CHECKSUM_KEY}":"`;
/** `,"crc32":"` + 8 hex digits + `"}`. */
export const CHECKSUM_SUFFIX_LENGTH = SUFFIX_START.length + 8 + 2;

/**
 * `json` — one non-empty JSON object exactly as `JSON.stringify` wrote it — with its checksum
 * as its last key (no newline).
 */
export function withChecksum(json: string): string {
  const covered = json.slice(0, -1);
  return `${covered}${SUFFIX_START}${checksumHex(covered)}"}`;
}

/** The checksum of `text` (its UTF-8 bytes) as written in a line: 8 lowercase hex digits. */
export function checksumHex(text: string): string {
  return crc32(text).toString(16).padStart(8, '0');
}

/** What {@link checkLine} found: `missing` — the line does not end with a well-formed checksum. */
export type LineChecksum = { readonly status: 'ok' } | { readonly status: 'missing' } | { readonly status: 'mismatch'; readonly written: string; readonly computed: string };

const OK: LineChecksum = { status: 'ok' };
const MISSING: LineChecksum = { status: 'missing' };

/** Checks one line (without its newline) written by {@link withChecksum}. */
export function checkLine(line: string): LineChecksum {
  const suffixAt = line.length - CHECKSUM_SUFFIX_LENGTH;
  if (suffixAt < 1 || !line.startsWith(SUFFIX_START, suffixAt) || !line.endsWith('"}')) return MISSING;
  const hexAt = suffixAt + SUFFIX_START.length;
  const written = hexValue(line, hexAt);
  if (written < 0) return MISSING;
  const computed = crc32(line.slice(0, suffixAt));
  return computed === written ? OK : { status: 'mismatch', written: line.slice(hexAt, hexAt + 8), computed: computed.toString(16).padStart(8, '0') };
}

/**
 * The record of a line whose checksum {@link checkLine} found `ok`: the JSON `withChecksum` was
 * given, byte for byte (cheaper to parse than the line: no key to strip).
 */
export function recordOf(line: string): string {
  return `${line.slice(0, line.length - CHECKSUM_SUFFIX_LENGTH)}}`;
}

/**
 * The checksum written at `coveredEnd` (where a line's covered text ends and `,"crc32":"`
 * should start) as a number, or -1 when no well-formed checksum suffix is there — for a fast
 * path that located the end of the record itself. The line's newline is not checked.
 */
export function writtenChecksumAt(text: string, coveredEnd: number): number {
  if (!text.startsWith(SUFFIX_START, coveredEnd) || !text.startsWith('"}', coveredEnd + CHECKSUM_SUFFIX_LENGTH - 2)) return -1;
  return hexValue(text, coveredEnd + SUFFIX_START.length);
}

// Slicing-by-8 tables of the CRC-32 zlib computes (reflected polynomial 0xedb88320).
const TABLES = new Int32Array(256 * 8);
for (let n = 0; n < 256; n += 1) {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLES[n] = c;
}
for (let t = 1; t < 8; t += 1) {
  for (let n = 0; n < 256; n += 1) {
    const previous = TABLES[(t - 1) * 256 + n] ?? 0;
    TABLES[t * 256 + n] = (previous >>> 8) ^ (TABLES[previous & 0xff] ?? 0);
  }
}

/**
 * zlib's CRC-32 of `bytes[start, end)`, computed here: for the ~70-byte lines of a journal
 * being loaded it costs a third of `crc32(bytes.subarray(start, end))` (no view or string to
 * make per line: 10 ms against 23–30 ms per 100,000 lines). Checked against `zlib.crc32` by a
 * property test; writers use zlib's.
 */
export function crc32OfBytes(bytes: Uint8Array, start: number, end: number): number {
  const t = TABLES;
  let c = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const low = c ^ ((bytes[i] ?? 0) | ((bytes[i + 1] ?? 0) << 8) | ((bytes[i + 2] ?? 0) << 16) | ((bytes[i + 3] ?? 0) << 24));
    c =
      (t[1792 + (low & 0xff)] ?? 0) ^
      (t[1536 + ((low >>> 8) & 0xff)] ?? 0) ^
      (t[1280 + ((low >>> 16) & 0xff)] ?? 0) ^
      (t[1024 + (low >>> 24)] ?? 0) ^
      (t[768 + (bytes[i + 4] ?? 0)] ?? 0) ^
      (t[512 + (bytes[i + 5] ?? 0)] ?? 0) ^
      (t[256 + (bytes[i + 6] ?? 0)] ?? 0) ^
      (t[bytes[i + 7] ?? 0] ?? 0);
  }
  for (; i < end; i += 1) c = (t[(c ^ (bytes[i] ?? 0)) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** Eight lowercase hex digits at `at` as a number, or -1. */
function hexValue(text: string, at: number): number {
  let value = 0;
  for (let i = at; i < at + 8; i += 1) {
    const c = text.charCodeAt(i);
    let digit: number;
    if (c >= 0x30 && c <= 0x39) digit = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) digit = c - 0x57;
    else return -1;
    value = value * 16 + digit;
  }
  return value;
}
