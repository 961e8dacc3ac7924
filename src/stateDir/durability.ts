import { open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * How durable the state dir's writes are. `full` (the default): every journal record, ledger
 * line and checkpoint is on disk (fsync/fdatasync) before it counts. `none` (research mode, for
 * backtests and parameter sweeps): the same writes in the same order through the same code, but
 * nothing is synced — a crash of the process loses nothing the kernel already has, a power loss
 * or kernel crash can lose or tear anything written since the run began. Such a state dir is
 * marked (nonDurableRun.ts) so that it is never resumed after a crash.
 */
export const DurabilitySchema = z.enum(['full', 'none']);
/** `full` or `none` (see {@link DurabilitySchema}). */
export type Durability = z.infer<typeof DurabilitySchema>;

/**
 * The syncs a writer makes, as one object so that research mode skips every one of them and
 * keeps everything else (the writes, their order, the truncation of failed writes).
 */
export interface DiskSync {
  readonly durable: boolean;
  /** fdatasync of an open file. */
  data(handle: FileHandle): Promise<void>;
  /** fsync of an open file (data and metadata). */
  file(handle: FileHandle): Promise<void>;
  /** Makes a created or renamed file's directory entry durable. */
  directory(path: string): Promise<void>;
}

/** Every sync made: the default. */
export const FULL_SYNC: DiskSync = {
  durable: true,
  data: (handle) => handle.datasync(),
  file: (handle) => handle.sync(),
  directory: (path) => syncDirectory(path),
};

const skip = (): Promise<void> => Promise.resolve();

/** No sync at all: research mode. */
export const NO_SYNC: DiskSync = { durable: false, data: skip, file: skip, directory: skip };

/** The {@link DiskSync} of a durability setting. */
export function diskSyncFor(durability: Durability): DiskSync {
  return durability === 'full' ? FULL_SYNC : NO_SYNC;
}

/** Makes a created or renamed file's directory entry durable (a no-op where directories cannot be synced). */
export async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code !== 'string' || !['EINVAL', 'EPERM', 'EISDIR', 'EBADF'].includes(code)) throw error;
  } finally {
    await handle.close();
  }
}

/**
 * fsyncs every file and directory under `dir` (the state dir after a research run ended
 * cleanly), so the clean end recorded after it is never on disk before the data it vouches for.
 */
export async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await syncTree(path);
    else if (entry.isFile()) {
      const handle = await open(path, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
  }
  await syncDirectory(dir);
}
