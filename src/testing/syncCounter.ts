import { constants } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { fileURLToPath } from 'node:url';

type FsPromises = typeof import('node:fs/promises');
type Open = FsPromises['open'];

/** What {@link countSyncs} counted so far, and how to stop counting. */
export interface SyncCount {
  /** `fsync` and `fdatasync` calls, and writes through `O_DSYNC`/`O_SYNC` handles. */
  syncs(): number;
  /** Files opened with `O_DSYNC` or `O_SYNC`. */
  syncOpens(): number;
  /** Puts Node's own functions back. */
  restore(): void;
}

/**
 * For tests and benchmarks: counts every sync that reaches the kernel from this process:
 * `fsync`/`fdatasync` calls on any `FileHandle`, and every write to a file opened with `O_DSYNC`
 * or `O_SYNC` (each of which is synced before it returns).
 * It wraps Node's own `FileHandle.prototype` methods and `fs/promises.open` (republished to ES
 * module importers with `syncBuiltinESMExports`), so it sees the code under test exactly as
 * it runs, whichever component syncs. `restore()` puts Node's functions back.
 */
export async function countSyncs(): Promise<SyncCount> {
  const fsPromises = createRequire(import.meta.url)('node:fs/promises') as FsPromises;
  const probe = await fsPromises.open(fileURLToPath(import.meta.url), 'r');
  const prototype = Object.getPrototypeOf(probe) as {
    sync: () => Promise<void>;
    datasync: () => Promise<void>;
    write: (...args: unknown[]) => Promise<unknown>;
  };
  await probe.close();
  const original = { sync: prototype.sync, datasync: prototype.datasync, write: prototype.write, open: fsPromises.open };
  const syncedHandles = new WeakSet<object>();
  let syncs = 0;
  let syncOpens = 0;
  prototype.sync = function sync(this: unknown) {
    syncs += 1;
    return original.sync.call(this);
  };
  prototype.datasync = function datasync(this: unknown) {
    syncs += 1;
    return original.datasync.call(this);
  };
  prototype.write = function write(this: object, ...args: unknown[]) {
    if (syncedHandles.has(this)) syncs += 1;
    return original.write.apply(this, args);
  };
  const syncFlags = constants.O_DSYNC | constants.O_SYNC;
  const counted: Open = async (path, flags, mode) => {
    const handle = await original.open(path, flags, mode);
    if (typeof flags === 'number' && (flags & syncFlags) !== 0) {
      syncOpens += 1;
      syncedHandles.add(handle);
    }
    return handle;
  };
  fsPromises.open = counted;
  syncBuiltinESMExports();
  return {
    syncs: () => syncs,
    syncOpens: () => syncOpens,
    restore: () => {
      prototype.sync = original.sync;
      prototype.datasync = original.datasync;
      prototype.write = original.write;
      fsPromises.open = original.open;
      syncBuiltinESMExports();
    },
  };
}
