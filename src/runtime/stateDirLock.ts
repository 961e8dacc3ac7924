import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { z } from 'zod';
import { AistockError } from '../core/errors.js';
import { errnoCode } from './stateFile.js';

/**
 * One process per state dir. The lock itself is proper-lockfile's (an atomic `mkdir` of
 * `<dir>/lock`, kept fresh by its mtime); beside it, `lock.owner.json` names the holder so a
 * refused process can say who holds it. A holder that died without releasing (SIGKILL) is
 * taken over at once when its pid is gone on this host, else after `staleMs`.
 */

/** Another live process holds the state dir. Not retryable until that process exits. */
export class StateDirLockedError extends AistockError {
  readonly stateDir: string;
  readonly holderPid: number | undefined;

  constructor(stateDir: string, holderPid: number | undefined) {
    super(
      'STATE_DIR_LOCKED',
      `state dir ${stateDir} is locked by another process${holderPid === undefined ? '' : ` (pid ${holderPid})`}`,
    );
    this.stateDir = stateDir;
    this.holderPid = holderPid;
  }
}

/** A held state-dir lock. `release` is idempotent. */
export interface StateDirLock {
  readonly stateDir: string;
  release(): Promise<void>;
}

const ownerSchema = z.object({ pid: z.number().int(), host: z.string() });

const OWNER_FILE = 'lock.owner.json';
const LOCK_DIR = 'lock';

export interface LockOptions {
  /** A lock not refreshed for this long is stale (proper-lockfile's `stale`, minimum 2000). */
  staleMs?: number;
  /** Called if the lock is lost while held (its dir was removed or could not be refreshed). */
  onCompromised?: (error: Error) => void;
}

/** Takes the state dir's lock, creating the dir; throws {@link StateDirLockedError}. */
export async function lockStateDir(stateDir: string, options: LockOptions = {}): Promise<StateDirLock> {
  await mkdir(stateDir, { recursive: true });
  const lockOptions = {
    lockfilePath: join(stateDir, LOCK_DIR),
    stale: options.staleMs ?? 10_000,
    retries: 0,
    realpath: false,
    onCompromised: options.onCompromised ?? reportCompromised,
  };
  let releaseLock: () => Promise<void>;
  try {
    releaseLock = await lockfile.lock(stateDir, lockOptions);
  } catch (error) {
    if (errnoCode(error) !== 'ELOCKED') throw error;
    const holder = await readOwner(stateDir);
    if (holder === undefined || !isDeadLocalProcess(holder)) throw new StateDirLockedError(stateDir, holder?.pid);
    // The holder is gone: age its lock so proper-lockfile's own stale takeover claims it.
    await utimes(join(stateDir, LOCK_DIR), 0, 0).catch(() => undefined);
    try {
      releaseLock = await lockfile.lock(stateDir, lockOptions);
    } catch (retryError) {
      if (errnoCode(retryError) !== 'ELOCKED') throw retryError;
      throw new StateDirLockedError(stateDir, (await readOwner(stateDir))?.pid);
    }
  }
  await writeFile(join(stateDir, OWNER_FILE), JSON.stringify({ pid: process.pid, host: hostname() }));
  let released: Promise<void> | undefined;
  return {
    stateDir,
    release: () => {
      released ??= rm(join(stateDir, OWNER_FILE), { force: true }).then(() => releaseLock());
      return released;
    },
  };
}

async function readOwner(stateDir: string): Promise<z.infer<typeof ownerSchema> | undefined> {
  try {
    const parsed = ownerSchema.safeParse(JSON.parse(await readFile(join(stateDir, OWNER_FILE), 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    // No owner file yet (the holder is between mkdir and writing it) or a torn one: unknown holder.
    return undefined;
  }
}

function isDeadLocalProcess(owner: z.infer<typeof ownerSchema>): boolean {
  if (owner.host !== hostname() || owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (error) {
    return errnoCode(error) === 'ESRCH';
  }
}

function reportCompromised(error: Error): void {
  process.emitWarning(`aistock: state dir lock compromised: ${error.message}`, { code: 'AISTOCK_LOCK_COMPROMISED' });
}
