import { constants } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';

type FsPromises = typeof import('node:fs/promises');
type Open = FsPromises['open'];

/**
 * Counts every sync that reaches the kernel from this process: `fsync`/`fdatasync` calls on any
 * `FileHandle`, and every file opened with `O_DSYNC` or `O_SYNC` (whose each write is a sync).
 * It wraps Node's own `FileHandle.prototype` methods and `fs/promises.open` (republished to ES
 * module importers with `syncBuiltinESMExports`), so it sees the code under test exactly as
 * it runs, whichever component syncs. `restore()` puts Node's functions back.
 */
export async function countSyncs(): Promise<{ syncs: () => number; syncOpens: () => number; restore: () => void }> {
  const fsPromises = createRequire(import.meta.url)('node:fs/promises') as FsPromises;
  const probe = await fsPromises.open(import.meta.filename, 'r');
  const prototype = Object.getPrototypeOf(probe) as { sync: () => Promise<void>; datasync: () => Promise<void> };
  await probe.close();
  const original = { sync: prototype.sync, datasync: prototype.datasync, open: fsPromises.open };
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
  const syncFlags = constants.O_DSYNC | constants.O_SYNC;
  const counted: Open = (path, flags, mode) => {
    if (typeof flags === 'number' && (flags & syncFlags) !== 0) syncOpens += 1;
    return original.open(path, flags, mode);
  };
  fsPromises.open = counted;
  syncBuiltinESMExports();
  return {
    syncs: () => syncs,
    syncOpens: () => syncOpens,
    restore: () => {
      prototype.sync = original.sync;
      prototype.datasync = original.datasync;
      fsPromises.open = original.open;
      syncBuiltinESMExports();
    },
  };
}
