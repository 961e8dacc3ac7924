import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { AistockError, describeError } from '../common/errors.js';
import type { Clock } from '../common/clock.js';
import { FULL_SYNC, syncDirectory, type DiskSync } from './durability.js';

export { syncDirectory } from './durability.js';

/**
 * Versioned, crash-safe JSON files: `{ schemaVersion, savedAt, data }`, written atomically
 * with fsync, zod-checked on load. A file that does not parse or validate is renamed aside
 * (`<name>.corrupt-<time>`), never overwritten or deleted, and the caller is told so.
 */

/** Writes a whole file durably. The default is {@link atomicFileWriter}; tests inject faults. */
export type FileWriter = (path: string, contents: string) => Promise<void>;

/**
 * Temp file in the same dir, every byte written, fsync, rename, fsync of the dir: a crash
 * leaves the old file or the new one, and a full disk is an error, never a short file.
 * (write-file-atomic 7 renames after a short `write()` — on a full tmpfs it put a 4 KB torn
 * checkpoint in place of the good one and reported success; `FileHandle.writeFile` writes
 * until done or throws ENOSPC.) With `NO_SYNC` (research mode) the same steps without
 * the two syncs: still all-or-nothing for a killed process, not across a power loss.
 */
export function atomicFileWriterWith(sync: DiskSync): FileWriter {
  return async (path, contents) => {
    const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const file = await open(temp, 'w');
    try {
      await file.writeFile(contents, 'utf8');
      await sync.file(file);
    } catch (error) {
      await file.close();
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await file.close();
    try {
      await rename(temp, path);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await sync.directory(dirname(path));
  };
}

/** {@link atomicFileWriterWith} every sync made: the default writer of every state file. */
export const atomicFileWriter: FileWriter = atomicFileWriterWith(FULL_SYNC);

const envelopeSchema = z.object({
  schemaVersion: z.number().int(),
  savedAt: z.number(),
  data: z.unknown(),
});

/** Why a state file was set aside. */
export type CorruptReason = 'UNPARSABLE' | 'INVALID_ENVELOPE' | 'WRONG_VERSION' | 'INVALID_DATA';

/** What reading a state file found. `corrupt` means the file was moved to `movedTo`. */
export type StateFileRead<T> =
  | { status: 'missing' }
  | { status: 'ok'; data: T; savedAt: number }
  | { status: 'corrupt'; reason: CorruptReason; detail: string; movedTo: string };

/** A state file could not be read or written (not: was corrupt, which is a result). */
export class StateFileError extends AistockError {
  readonly path: string;

  constructor(path: string, operation: 'read' | 'write' | 'move', cause: unknown) {
    const code = errnoCode(cause);
    super(
      `STATE_FILE_${operation.toUpperCase()}_FAILED`,
      `cannot ${operation} state file ${path}: ${describeError(cause)}`,
      { cause, retryable: code !== undefined && RETRYABLE_ERRNO.has(code) },
    );
    this.path = path;
  }
}

const RETRYABLE_ERRNO = new Set(['EIO', 'ENOSPC', 'EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'EACCES', 'EPERM', 'EROFS', 'EDQUOT']);

/** The `code` of a Node errno error (`EIO`, `ENOENT`, …), if it is one. */
export function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** How a state file's `data` is checked: its zod schema and the envelope version it must carry. */
export interface StateFileFormat<T> {
  schema: z.ZodType<T>;
  schemaVersion: number;
}

/** `data` in its envelope, `{ schemaVersion, savedAt, data }`, as every store writes it. */
export function envelopeText(data: unknown, schemaVersion: number, clock: Clock): string {
  return JSON.stringify({ schemaVersion, savedAt: clock.wallMs(), data });
}

/** Serialises `data` in the envelope and writes it durably; throws {@link StateFileError}. */
export async function writeStateFile<T>(
  path: string,
  data: T,
  format: StateFileFormat<T>,
  clock: Clock,
  writer: FileWriter = atomicFileWriter,
): Promise<void> {
  const contents = envelopeText(data, format.schemaVersion, clock);
  try {
    await writer(path, contents);
  } catch (error) {
    throw new StateFileError(path, 'write', error);
  }
}

/**
 * Reads and validates a state file. Missing → `missing`; unreadable bytes, a foreign envelope,
 * another schema version or data that fails the schema → the file is moved aside and the
 * result is `corrupt`. Throws {@link StateFileError} only when the disk itself fails.
 */
export async function readStateFile<T>(path: string, format: StateFileFormat<T>, clock: Clock): Promise<StateFileRead<T>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { status: 'missing' };
    throw new StateFileError(path, 'read', error);
  }
  const verdict = checkEnvelope(text, format);
  if (verdict.ok) return { status: 'ok', data: verdict.data, savedAt: verdict.savedAt };
  const movedTo = await moveAside(path, clock);
  return { status: 'corrupt', reason: verdict.reason, detail: verdict.detail, movedTo };
}

/** What {@link checkEnvelope} found in a state file's text. */
export type EnvelopeVerdict<T> = { ok: true; data: T; savedAt: number } | { ok: false; reason: CorruptReason; detail: string };

/** Parses and checks an envelope's text (JSON, envelope shape, version, then `data` by its schema); shared by every store. */
export function checkEnvelope<T>(text: string, format: StateFileFormat<T>): EnvelopeVerdict<T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: 'UNPARSABLE', detail: describeError(error) };
  }
  const envelope = envelopeSchema.safeParse(json);
  if (!envelope.success) return { ok: false, reason: 'INVALID_ENVELOPE', detail: z.prettifyError(envelope.error) };
  const { schemaVersion, savedAt, data } = envelope.data;
  if (schemaVersion !== format.schemaVersion) {
    return { ok: false, reason: 'WRONG_VERSION', detail: `schemaVersion ${schemaVersion}, expected ${format.schemaVersion}` };
  }
  const parsed = format.schema.safeParse(data);
  if (!parsed.success) return { ok: false, reason: 'INVALID_DATA', detail: z.prettifyError(parsed.error) };
  return { ok: true, data: parsed.data, savedAt };
}

/**
 * Renames `path` to `<path>.corrupt-<UTC time>` without ever replacing an existing file:
 * `link` fails on an existing target, so a clash takes the next counter.
 */
export async function moveAside(path: string, clock: Clock): Promise<string> {
  const stamp = new Date(clock.wallMs()).toISOString().replace(/[-:]/g, '').replace('.', '');
  for (let attempt = 0; ; attempt += 1) {
    const target = attempt === 0 ? `${path}.corrupt-${stamp}` : `${path}.corrupt-${stamp}-${attempt}`;
    try {
      await link(path, target);
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') continue;
      throw new StateFileError(path, 'move', error);
    }
    await unlink(path);
    return target;
  }
}
