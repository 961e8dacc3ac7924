import { constants as fsConstants } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { z } from 'zod';
import { CLIENT_ORDER_ID_MAX_LENGTH, clientOrderIdSchema } from './clientOrderId.js';
import { AistockError, describeError } from '../common/errors.js';
import type { JournalEntryRecord, JournalRecord } from './idempotency.js';
import type { Clock } from '../common/clock.js';
import { atomicFileWriterWith, errnoCode, moveAside, type FileWriter } from '../stateDir/stateFile.js';
import { FULL_SYNC, type DiskSync } from '../stateDir/durability.js';
import { CommitQueue } from '../common/commitQueue.js';
import { CHECKSUM_SUFFIX_LENGTH, checkLine, crc32OfBytes, withChecksum, writtenChecksumAt, type LineChecksum } from '../stateDir/lineChecksum.js';

/**
 * The idempotency write-ahead journal. {@link OrderJournal} is the interface the tracker
 * needs, so a shared store can take the file's place later; {@link FileOrderJournal} is the
 * embedded default, `orders.journal` in the state dir:
 *
 * - JSON lines: a header `{"journal":"aistock/orders","schemaVersion":2,"createdAt":…}`, then
 *   one record per line (`{"id","state","at"}` or `{"clockSkewMs","at"}`), appended only. Every
 *   line, the header too, ends with its CRC-32 (`"crc32":"…"`, see lineChecksum.ts): a line whose
 *   checksum does not match, or is missing, is corruption (`CHECKSUM_MISMATCH`, its line named).
 * - A journal of schema version 1 (no checksums) is read as before (each line checked by its
 *   schema only) and rewritten at once, atomically, in version 2 (`upgradedFrom: 1`).
 * - Group commit: appends that arrive while a durable write is in flight are written together
 *   by the next one, so 8 callers cost about one sync, not eight. The file is opened with
 *   `O_DSYNC`, so each write returns only once its data is on disk: the same guarantee as
 *   write + fdatasync, in one system call instead of two (fdatasync where O_DSYNC is missing).
 * - A failed write or sync fails every append in its batch, and the bytes it may have left
 *   are cut off before the next write, so a failure can never become a corrupt middle line.
 * - Load: a last line without its newline (a write torn by SIGKILL or power loss) is cut off
 *   and reported, never checked against its checksum. A bad header, another schema version, or
 *   a whole line that fails its checksum or its schema is corruption: the file is renamed aside
 *   (`orders.journal.corrupt-<time>`) and a fresh one started, and the result says so (the
 *   session then rebuilds the journal from the broker, the source of truth for what was sent).
 * - Compaction rewrites the live records atomically (`atomicFileWriter`: every byte, fsync, rename).
 * - Research mode (`sync: NO_SYNC`): no O_DSYNC and no sync anywhere; the same writes otherwise.
 */

/** The journal's file name in the state dir. */
export const ORDER_JOURNAL_FILE = 'orders.journal';

/** The journal format this code writes (2: a CRC-32 on every line). */
export const ORDER_JOURNAL_SCHEMA_VERSION = 2;

/** The format before checksums, still read (and rewritten as {@link ORDER_JOURNAL_SCHEMA_VERSION} at load). */
const UNCHECKED_SCHEMA_VERSION = 1;

const JOURNAL_KIND = 'aistock/orders';

const headerSchema = z.object({ journal: z.literal(JOURNAL_KIND), schemaVersion: z.number().int(), createdAt: z.number() });

const ENTRY_STATES = ['reserved', 'submitted', 'rejected', 'unknown', 'released'] as const satisfies readonly JournalEntryRecord['state'][];

const entryLineSchema = z.object({ id: clientOrderIdSchema, state: z.enum(ENTRY_STATES), at: z.number() });

/**
 * An entry line exactly as `JSON.stringify` writes it, newline included (`y`: it matches only
 * where a line starts). Nearly every line is this, and matching it costs a fraction of
 * `JSON.parse` plus zod. It accepts only what {@link entryLineSchema} accepts (the id rule is
 * {@link clientOrderIdSchema}'s, the number JSON's grammar), so anything else, such as another
 * key order, an escape, a clock-skew record or a bad line, takes the full path unchanged.
 * The checksum after it is checked by {@link canonicalEntryAt}.
 */
const ENTRY_FIELDS = `\\{"id":"([A-Za-z0-9-]{1,${CLIENT_ORDER_ID_MAX_LENGTH}})","state":"(${ENTRY_STATES.join('|')})","at":(-?(?:0|[1-9]\\d*)(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)`;
/** The record's part of the line; the checksum after it is checked by hand (measured a little cheaper than in the expression). */
const CANONICAL_ENTRY_FIELDS = new RegExp(ENTRY_FIELDS, 'y');
/** The same in a version 1 journal: no checksum, the line ends after the record. */
const UNCHECKED_CANONICAL_ENTRY_LINE = new RegExp(`${ENTRY_FIELDS}\\}\\n`, 'y');

// The matched state as the shared constant, not a fresh copy per line in 100,000 records.
const ENTRY_STATE_BY_TEXT = new Map<string, JournalEntryRecord['state']>(ENTRY_STATES.map((state) => [state, state]));

const clockSkewLineSchema = z.object({ clockSkewMs: z.number(), at: z.number() });

/** The end of the file that was not a whole line, cut off at load. */
export interface TornTail {
  /** Byte offset where the torn line started (the file's length after the cut). */
  readonly offset: number;
  readonly bytes: number;
  /** The start of the cut bytes, for the log. */
  readonly preview: string;
}

/**
 * Why a journal was set aside: `CHECKSUM_MISMATCH` — a whole line whose CRC-32 does not match
 * its bytes, or that carries none (a flipped byte, an edit); `INVALID_LINE` — a line whose
 * checksum holds (or a version 1 line) but that is not a record.
 */
export type JournalCorruptReason = 'INVALID_HEADER' | 'WRONG_VERSION' | 'CHECKSUM_MISMATCH' | 'INVALID_LINE';

/** What loading the journal found. After either result the journal is open for appends. */
export type JournalLoad =
  | {
      readonly status: 'ok';
      /** Every record in the file, in order (the header excluded). */
      readonly records: JournalRecord[];
      readonly tornTail: TornTail | null;
      /** No usable journal was there: a new one was started. */
      readonly created: boolean;
      /** The schema version the file was in when it was rewritten in the current one at load (1), else null. */
      readonly upgradedFrom: number | null;
    }
  | {
      readonly status: 'corrupt';
      readonly reason: JournalCorruptReason;
      readonly detail: string;
      /** 1-based line number of the first bad line (the header is line 1). */
      readonly line: number;
      /** Where the corrupt file now is; a fresh journal was started in its place. */
      readonly movedTo: string;
    };

/** A durable, append-only store of idempotency records. */
export interface OrderJournal {
  /** Reads the journal and opens it for appending. Called once, before anything else. */
  load(): Promise<JournalLoad>;
  /** Resolves once every record is durable (fsynced); rejects with {@link JournalWriteError}. */
  append(records: readonly JournalRecord[]): Promise<void>;
  /** Atomically replaces the journal with exactly `records` (the live ids). */
  compact(records: readonly JournalEntryRecord[]): Promise<void>;
  /** Waits for pending writes, then closes. Idempotent. */
  close(): Promise<void>;
}

/** The journal could not be read (not: it was corrupt, which is a {@link JournalLoad} result). */
export class JournalReadError extends AistockError {
  readonly path: string;

  constructor(path: string, cause: unknown) {
    super('JOURNAL_READ_FAILED', `cannot read order journal ${path}: ${describeError(cause)}`, {
      cause,
      retryable: errnoCode(cause) !== 'EISDIR',
    });
    this.path = path;
  }
}

/**
 * Records did not reach the disk. Reservations in the batch were not made: do not send those
 * orders. Retryable: the journal cuts off what the failed write left before the next one.
 */
export class JournalWriteError extends AistockError {
  readonly path: string;

  constructor(path: string, operation: 'append' | 'compact' | 'create' | 'upgrade', cause: unknown) {
    super(
      operation === 'compact' ? 'JOURNAL_COMPACTION_FAILED' : 'JOURNAL_WRITE_FAILED',
      `cannot ${operation} order journal ${path}: ${describeError(cause)}`,
      { cause, retryable: true },
    );
    this.path = path;
  }
}

/** The journal is not open: not loaded yet, closed, or lost its file. Not retryable. */
export class JournalClosedError extends AistockError {
  constructor(path: string, why: string) {
    super('JOURNAL_CLOSED', `order journal ${path} is not open: ${why}`);
  }
}

/**
 * Fault injection for tests: a hook that throws fails the batch exactly as an I/O error would.
 * `beforeWrite` fails it before any byte is written; `afterWrite` after the bytes reached the
 * file, as a device error reported on sync does (the bytes are there but not acknowledged).
 */
export interface JournalFaults {
  beforeWrite?: () => void | Promise<void>;
  afterWrite?: () => void | Promise<void>;
}

/** Counters of what the file journal did. */
export interface FileJournalStats {
  /** `append` calls that carried records. */
  appends: number;
  /** Durable write rounds; fewer than `appends` when group commit shares them. */
  syncs: number;
  failedSyncs: number;
  compactions: number;
}

/** The journal's path in `stateDir`. */
export function orderJournalPath(stateDir: string): string {
  return join(stateDir, ORDER_JOURNAL_FILE);
}

/** `orders.journal` on the local disk. One instance per file (the state-dir lock ensures it). */
export class FileOrderJournal implements OrderJournal {
  /** Swap in hooks at any time to make the next write or sync fail (tests only). */
  faults: JournalFaults;
  readonly path: string;
  readonly #clock: Clock;
  readonly #sync: DiskSync;
  readonly #writer: FileWriter;
  /** How the file is opened for appends: with O_DSYNC when durable. */
  readonly #openFlags: number;
  #handle: FileHandle | undefined;
  #closedBecause: string | undefined = 'not loaded yet';
  /** Durable length of the file: appends go here, and anything past it is cut first. */
  #size = 0;
  #tailDirty = false;
  /** Work in call order; appends queued together are written and synced as one batch. */
  readonly #queue = new CommitQueue<string>((texts) => this.#commit(texts));
  #closing: Promise<void> | undefined;
  readonly #stats: FileJournalStats = { appends: 0, syncs: 0, failedSyncs: 0, compactions: 0 };

  /** `sync`: {@link FULL_SYNC} by default; `NO_SYNC` for research mode. */
  constructor(options: { path: string; clock: Clock; faults?: JournalFaults; sync?: DiskSync }) {
    this.path = options.path;
    this.#clock = options.clock;
    this.#sync = options.sync ?? FULL_SYNC;
    this.#writer = atomicFileWriterWith(this.#sync);
    this.#openFlags = fsConstants.O_RDWR | (this.#sync.durable ? (O_DSYNC ?? 0) : 0);
    this.faults = options.faults ?? {};
  }

  /** A copy of the counters. */
  stats(): FileJournalStats {
    return { ...this.#stats };
  }

  async load(): Promise<JournalLoad> {
    if (this.#handle !== undefined) throw new JournalReadError(this.path, new Error('already loaded'));
    let bytes: Buffer;
    try {
      bytes = await readFile(this.path);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw new JournalReadError(this.path, error);
      await this.#create();
      return { status: 'ok', records: [], tornTail: null, created: true, upgradedFrom: null };
    }
    const bodyLength = bytes.lastIndexOf(0x0a) + 1;
    const tornTail =
      bodyLength < bytes.length
        ? { offset: bodyLength, bytes: bytes.length - bodyLength, preview: bytes.subarray(bodyLength, bodyLength + 40).toString('utf8') }
        : null;
    const parsed = parseJournal(bytes.subarray(0, bodyLength));
    if (!parsed.ok) {
      const movedTo = await moveAside(this.path, this.#clock);
      await this.#create();
      return { status: 'corrupt', reason: parsed.reason, detail: parsed.detail, line: parsed.line, movedTo };
    }
    if (parsed.records === null) {
      // Nothing but (part of) a header: the journal was being created when the process died.
      await this.#create();
      return { status: 'ok', records: [], tornTail, created: true, upgradedFrom: null };
    }
    if (parsed.version !== ORDER_JOURNAL_SCHEMA_VERSION) {
      // Version 1 (no checksums): rewritten whole, atomically, so every line has one from now on.
      await this.#replace(parsed.records, 'upgrade');
      this.#closedBecause = undefined;
      return { status: 'ok', records: parsed.records, tornTail, created: false, upgradedFrom: parsed.version };
    }
    try {
      this.#handle = await open(this.path, this.#openFlags);
      if (tornTail !== null) {
        await this.#handle.truncate(bodyLength);
        await this.#sync.data(this.#handle);
      }
    } catch (error) {
      throw new JournalReadError(this.path, error);
    }
    this.#size = bodyLength;
    this.#closedBecause = undefined;
    return { status: 'ok', records: parsed.records, tornTail, created: false, upgradedFrom: null };
  }

  append(records: readonly JournalRecord[]): Promise<void> {
    if (this.#closedBecause !== undefined) return Promise.reject(new JournalClosedError(this.path, this.#closedBecause));
    if (records.length === 0) return Promise.resolve();
    this.#stats.appends += 1;
    let text = '';
    for (const record of records) text += `${withChecksum(JSON.stringify(record))}\n`;
    return this.#queue.push(text);
  }

  compact(records: readonly JournalEntryRecord[]): Promise<void> {
    if (this.#closedBecause !== undefined) return Promise.reject(new JournalClosedError(this.path, this.#closedBecause));
    return this.#queue.exclusive(() => this.#replace(records, 'compact'));
  }

  close(): Promise<void> {
    this.#closing ??= this.#queue.exclusive(async () => {
      this.#closedBecause = 'closed';
      const handle = this.#handle;
      this.#handle = undefined;
      // A close that fails leaves nothing to retry: the data was synced or reported failed.
      await handle?.close().catch(() => undefined);
    });
    return this.#closing;
  }

  /** One batch of appends: written and synced together, or every one of them failed. */
  async #commit(texts: readonly string[]): Promise<void> {
    const handle = this.#handle;
    if (handle === undefined) throw new JournalClosedError(this.path, this.#closedBecause ?? 'closed');
    const buffer = Buffer.from(texts.join(''));
    try {
      await this.faults.beforeWrite?.();
      if (this.#tailDirty) {
        // What a failed batch left past the durable end goes, durably, before anything new.
        await handle.truncate(this.#size);
        await this.#sync.data(handle);
      }
      this.#tailDirty = true;
      await writeFully(handle, buffer, this.#size);
      await this.faults.afterWrite?.();
      if (O_DSYNC === undefined) await this.#sync.data(handle);
    } catch (error) {
      this.#stats.failedSyncs += 1;
      throw new JournalWriteError(this.path, 'append', error);
    }
    this.#size += buffer.length;
    this.#tailDirty = false;
    this.#stats.syncs += 1;
  }

  /** Atomically replaces the file with `records` (compaction, or the upgrade of a version 1 journal). */
  async #replace(records: readonly JournalRecord[], operation: 'compact' | 'upgrade'): Promise<void> {
    let text = headerLine(this.#clock.wallMs());
    for (const record of records) text += `${withChecksum(JSON.stringify(record))}\n`;
    try {
      await this.faults.beforeWrite?.();
      await this.#writer(this.path, text);
    } catch (error) {
      // atomicFileWriter renames only a complete, synced file: the old journal is intact.
      throw new JournalWriteError(this.path, operation, error);
    }
    const previous = this.#handle;
    try {
      await this.#sync.directory(dirname(this.path));
      this.#handle = await open(this.path, this.#openFlags);
    } catch (error) {
      // Appending through the old handle would write into the replaced file: stop instead.
      this.#handle = undefined;
      this.#closedBecause = `lost its file after ${operation === 'compact' ? 'compaction' : 'its upgrade'} (${describeError(error)})`;
      throw new JournalWriteError(this.path, operation, error);
    } finally {
      await previous?.close().catch(() => undefined);
    }
    this.#size = Buffer.byteLength(text);
    this.#tailDirty = false;
    if (operation === 'compact') this.#stats.compactions += 1;
  }

  /** Starts an empty journal (header only), durably, replacing whatever is at the path. */
  async #create(): Promise<void> {
    const header = Buffer.from(headerLine(this.#clock.wallMs()));
    try {
      const handle = await open(this.path, this.#openFlags | fsConstants.O_CREAT | fsConstants.O_TRUNC);
      this.#handle = handle;
      await writeFully(handle, header, 0);
      await this.#sync.data(handle);
      await this.#sync.directory(dirname(this.path));
    } catch (error) {
      throw new JournalWriteError(this.path, 'create', error);
    }
    this.#size = header.length;
    this.#tailDirty = false;
    this.#closedBecause = undefined;
  }
}

// Undefined where the platform has no O_DSYNC (Windows): then each write is followed by fdatasync.
const O_DSYNC: number | undefined = (fsConstants as { O_DSYNC?: number }).O_DSYNC;

function headerLine(createdAt: number): string {
  return `${withChecksum(JSON.stringify({ journal: JOURNAL_KIND, schemaVersion: ORDER_JOURNAL_SCHEMA_VERSION, createdAt }))}\n`;
}

const NEWLINE = 0x0a;

/** How many bytes of the journal {@link parseJournal} decodes at a time (rounded up to a whole line). */
const DECODE_CHUNK_BYTES = 16_384;

type ParsedJournal =
  | { ok: true; records: JournalRecord[] | null; version: number }
  | { ok: false; reason: JournalCorruptReason; detail: string; line: number };

/**
 * Parses whole lines (the torn tail is already cut). `records: null` means not even a header.
 * The header says the version: 2 checks every line's checksum first, then its schema; 1 (no
 * checksums) only the schema. The text is decoded a few kilobytes of whole lines at a time: an
 * id read from a line shares the decoded string it came from (V8 slices substrings), so a
 * long-lived id keeps its own chunk in memory, not the whole file. A newline byte never falls
 * inside a UTF-8 sequence, so chunks cut after one decode exactly as the whole would.
 */
function parseJournal(body: Buffer): ParsedJournal {
  const headerEnd = body.indexOf(NEWLINE);
  if (headerEnd === -1) return { ok: true, records: null, version: ORDER_JOURNAL_SCHEMA_VERSION };
  const header = parseHeader(body.toString('utf8', 0, headerEnd));
  if (!header.ok) return { ...header, line: 1 };
  const checked = header.version === ORDER_JOURNAL_SCHEMA_VERSION;
  const records: JournalRecord[] = [];
  let line = 2;
  for (let chunkStart = headerEnd + 1; chunkStart < body.length; ) {
    // `body` ends with a newline, so this finds one: the chunk ends with a whole line.
    const chunkEnd = body.indexOf(NEWLINE, Math.min(chunkStart + DECODE_CHUNK_BYTES, body.length) - 1) + 1;
    const text = body.toString('utf8', chunkStart, chunkEnd);
    // One UTF-16 unit per byte only when every byte is ASCII: then text offsets are byte offsets.
    const bytesAt = text.length === chunkEnd - chunkStart ? chunkStart : -1;
    for (let start = 0; start < text.length; line += 1) {
      const end = text.indexOf('\n', start);
      let record: JournalRecord | undefined = checked ? canonicalEntryAt(text, start, body, bytesAt) : uncheckedCanonicalEntryAt(text, start);
      if (record === undefined) {
        const lineText = text.slice(start, end);
        const checksum = checked ? checkLine(lineText) : undefined;
        if (checksum !== undefined && checksum.status !== 'ok') {
          return { ok: false, reason: 'CHECKSUM_MISMATCH', detail: describeChecksum(checksum, lineText), line };
        }
        const parsed = parseLine(lineText, recordSchemaFor);
        if (!parsed.ok) return { ok: false, reason: 'INVALID_LINE', detail: parsed.detail, line };
        record = parsed.data;
      }
      records.push(record);
      start = end + 1;
    }
    chunkStart = chunkEnd;
  }
  return { ok: true, records, version: header.version };
}

/**
 * The header's version, checked: a version 2 header must carry a matching checksum (a flipped
 * version digit is a checksum mismatch, not another version); a version 1 header carries none.
 */
function parseHeader(text: string): { ok: true; version: number } | { ok: false; reason: JournalCorruptReason; detail: string } {
  const checksum = checkLine(text);
  if (checksum.status === 'mismatch') return { ok: false, reason: 'CHECKSUM_MISMATCH', detail: describeChecksum(checksum, text) };
  const header = parseLine(text, () => headerSchema);
  if (!header.ok) return { ok: false, reason: 'INVALID_HEADER', detail: header.detail };
  const { schemaVersion } = header.data;
  if (schemaVersion === ORDER_JOURNAL_SCHEMA_VERSION && checksum.status === 'ok') return { ok: true, version: schemaVersion };
  if (schemaVersion === UNCHECKED_SCHEMA_VERSION && checksum.status === 'missing') return { ok: true, version: schemaVersion };
  if (schemaVersion === ORDER_JOURNAL_SCHEMA_VERSION) return { ok: false, reason: 'CHECKSUM_MISMATCH', detail: describeChecksum(checksum, text) };
  return {
    ok: false,
    reason: 'WRONG_VERSION',
    detail: `schemaVersion ${schemaVersion}, expected ${ORDER_JOURNAL_SCHEMA_VERSION} (or ${UNCHECKED_SCHEMA_VERSION}, read and upgraded)`,
  };
}

/** Why a line failed its checksum, quoting its start. */
function describeChecksum(checksum: LineChecksum, text: string): string {
  const quoted = JSON.stringify(text.slice(0, 80));
  return checksum.status === 'mismatch'
    ? `CRC-32 ${checksum.computed} of the line's bytes, but it says ${checksum.written}: ${quoted}`
    : `no checksum (every line of a version ${ORDER_JOURNAL_SCHEMA_VERSION} journal ends with "crc32"): ${quoted}`;
}

/**
 * The entry on the line starting at `start` if it is written canonically and its checksum
 * matches; otherwise `undefined` (the full path then says what is wrong, if anything). The
 * checksum is computed over the file's bytes when `text` is `body` from `bytesAt` on, byte for
 * byte (an ASCII chunk), else over the text.
 */
function canonicalEntryAt(text: string, start: number, body: Buffer, bytesAt: number): JournalEntryRecord | undefined {
  CANONICAL_ENTRY_FIELDS.lastIndex = start;
  const match = CANONICAL_ENTRY_FIELDS.exec(text);
  if (match === null) return undefined;
  // The checksum covers the line up to `,"crc32":`, where the record's fields end.
  const coveredEnd = CANONICAL_ENTRY_FIELDS.lastIndex;
  if (text.charCodeAt(coveredEnd + CHECKSUM_SUFFIX_LENGTH) !== NEWLINE) return undefined;
  const written = writtenChecksumAt(text, coveredEnd);
  if (written < 0) return undefined;
  const computed = bytesAt >= 0 ? crc32OfBytes(body, bytesAt + start, bytesAt + coveredEnd) : crc32(text.slice(start, coveredEnd));
  return computed === written ? entryOf(match) : undefined;
}

/** {@link canonicalEntryAt} for a version 1 journal (no checksum). */
function uncheckedCanonicalEntryAt(text: string, start: number): JournalEntryRecord | undefined {
  UNCHECKED_CANONICAL_ENTRY_LINE.lastIndex = start;
  const match = UNCHECKED_CANONICAL_ENTRY_LINE.exec(text);
  return match === null ? undefined : entryOf(match);
}

function entryOf(match: RegExpExecArray): JournalEntryRecord | undefined {
  const id = match[1];
  const state = ENTRY_STATE_BY_TEXT.get(match[2] ?? '');
  const atText = match[3];
  // JSON's grammar admits 1e999, which parses to Infinity; zod refuses it, so leave it to zod.
  const at = Number(atText);
  if (id === undefined || state === undefined || !Number.isFinite(at)) return undefined;
  return { id, state, at };
}

/** Picks a record line's schema by its key: a third of the cost of `z.union`, on every line loaded. */
function recordSchemaFor(json: unknown): z.ZodType<JournalRecord> {
  return typeof json === 'object' && json !== null && 'clockSkewMs' in json ? clockSkewLineSchema : entryLineSchema;
}

/** One JSON line checked against its schema, or why not (quoting the start of the line). */
function parseLine<T>(text: string, schemaFor: (json: unknown) => z.ZodType<T>): { ok: true; data: T } | { ok: false; detail: string } {
  const quoted = JSON.stringify(text.slice(0, 80));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, detail: `not JSON (${describeError(error)}): ${quoted}` };
  }
  const parsed = schemaFor(json).safeParse(json);
  return parsed.success ? { ok: true, data: parsed.data } : { ok: false, detail: `${z.prettifyError(parsed.error)} in ${quoted}` };
}

async function writeFully(handle: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, written, buffer.length - written, position + written);
    written += bytesWritten;
  }
}

