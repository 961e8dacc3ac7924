import { createHash } from 'node:crypto';
import { link, mkdir, open, readFile, readlink, realpath, rename, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { AistockError } from '../common/errors.js';
import { errnoCode, syncDirectory } from './stateFile.js';

/**
 * One process per state dir: no race, and no dead holder ever blocks a restart.
 *
 * The lock is a Unix socket in Linux's abstract namespace, named after the state dir's real
 * path. Binding it is atomic — of any number of processes racing for it, exactly one wins —
 * and the kernel lets go of it the moment its process dies: SIGKILL, the OOM killer, or a
 * zombie its parent has not reaped yet (a process's sockets close when it exits, before it is
 * reaped). No pid is ever checked, so a pid reused by an unrelated process changes nothing.
 *
 * The socket is seen only inside one network namespace (one host or container). Beside it,
 * `lock.owner.json` names the holder (host, pid, since, namespace, boot) and is created with an
 * atomic `link`, so across namespaces too only one process owns it. A process that holds the
 * socket and finds an owner file written in its own namespace (or an earlier boot of its host)
 * knows that holder is dead, and replaces the file. One from another host or namespace (a
 * state dir on shared storage) is never taken over: the start is refused with the holder's
 * host, pid and age, and what to do if that holder is gone.
 */

/** Another process holds the state dir. Not retryable until that process exits. */
export class StateDirLockedError extends AistockError {
  readonly stateDir: string;
  readonly holderPid: number | undefined;
  readonly holderHost: string | undefined;

  constructor(stateDir: string, holder: LockOwner | undefined, code = 'STATE_DIR_LOCKED', detail?: string) {
    const who = holder === undefined ? '' : ` (pid ${holder.pid} on ${holder.host}, since ${new Date(holder.since).toISOString()})`;
    super(code, `state dir ${stateDir} is locked by another process${who}${detail === undefined ? '' : `: ${detail}`}`);
    this.stateDir = stateDir;
    this.holderPid = holder?.pid;
    this.holderHost = holder?.host;
  }
}

/**
 * The state dir's owner file names a holder on another host or in another network namespace,
 * whose lock this process cannot see: it may be alive, so it is not taken over.
 */
export class StateDirLockedElsewhereError extends StateDirLockedError {
  constructor(stateDir: string, holder: LockOwner, ownerFile: string, ageMs: number) {
    super(
      stateDir,
      holder,
      'STATE_DIR_LOCKED_ELSEWHERE',
      `that holder's lock is not visible from here (another host or container; ${Math.round(ageMs / 1000)} s old). ` +
        `If it is gone for good, delete ${ownerFile} and start again`,
    );
  }
}

/** The state dir cannot be written (a read-only file system, a full disk): no process can hold it here. */
export class StateDirUnwritableError extends AistockError {
  readonly stateDir: string;

  constructor(stateDir: string, cause: unknown) {
    const errno = errnoCode(cause) ?? 'an I/O error';
    super('STATE_DIR_UNWRITABLE', `state dir ${stateDir} cannot be written (${errno}): ${String(cause)}`, { cause });
    this.stateDir = stateDir;
  }
}

/** This platform has no abstract Unix sockets (not Linux): the state-dir lock cannot be taken. */
export class StateDirLockUnsupportedError extends AistockError {
  constructor(cause: unknown) {
    super('STATE_DIR_LOCK_UNSUPPORTED', `the state-dir lock needs Linux (abstract Unix sockets): ${String(cause)}`, { cause });
  }
}

/** A held state-dir lock. `release` is idempotent. */
export interface StateDirLock {
  readonly stateDir: string;
  release(): Promise<void>;
}

const ownerSchema = z.object({
  pid: z.number().int(),
  host: z.string(),
  since: z.number().default(0),
  /** The network namespace the holder's socket lives in (`net:[…]`); '' where unknown. */
  netns: z.string().default(''),
  bootId: z.string().default(''),
});
/** Who holds a state dir, as its owner file says. */
export type LockOwner = z.infer<typeof ownerSchema>;

/** The owner file's name in the state dir. */
export const LOCK_OWNER_FILE = 'lock.owner.json';

/** The options of {@link lockStateDir}. */
export interface LockOptions {
  /** The wall clock for the owner file's `since` (default `Date.now`). */
  wallMs?: () => number;
}

/** Takes the state dir's lock, creating the dir; throws {@link StateDirLockedError} if a live process holds it. */
export async function lockStateDir(stateDir: string, options: LockOptions = {}): Promise<StateDirLock> {
  await mkdir(stateDir, { recursive: true });
  const dir = await realpath(stateDir);
  const ownerFile = join(dir, LOCK_OWNER_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), since: (options.wallMs ?? Date.now)(), ...(await namespaceOf()) };
  // The holder answers who it is on its socket: the owner file may still name a dead predecessor.
  const server = await bindLockSocket(dir, me, async () =>
    new StateDirLockedError(stateDir, (await askHolder(dir)) ?? (await readOwner(ownerFile))),
  );
  try {
    await claimOwnerFile(stateDir, ownerFile, me, options.wallMs ?? Date.now);
  } catch (error) {
    server.close();
    throw error;
  }
  let released: Promise<void> | undefined;
  return {
    stateDir,
    release: () => {
      // The owner file goes first: once the socket closes, a new holder may write its own.
      released ??= releaseOwnerFile(ownerFile, me).finally(() => server.close());
      return released;
    },
  };
}

/** The socket's name: one per real path, within the 107 bytes Linux allows. */
function socketName(dir: string): string {
  return `\0aistock-state-dir-lock/${createHash('sha256').update(dir).digest('hex').slice(0, 40)}`;
}

function bindLockSocket(dir: string, me: LockOwner, locked: () => Promise<StateDirLockedError>): Promise<Server> {
  return new Promise<Server>((resolve, reject) => {
    const server = createServer((connection) => connection.end(JSON.stringify(me)));
    server.once('error', (error) => {
      if (errnoCode(error) === 'EADDRINUSE') locked().then(reject, reject);
      else reject(process.platform === 'linux' ? error : new StateDirLockUnsupportedError(error));
    });
    server.listen({ path: socketName(dir), exclusive: true }, () => {
      // The lock must not keep the process alive on its own.
      server.unref();
      resolve(server);
    });
  });
}

/** How long a refused process waits for the holder to say who it is. */
const ASK_HOLDER_TIMEOUT_MS = 5_000;

/** The holder's own answer on its socket, or undefined if it does not give one in time. */
function askHolder(dir: string): Promise<LockOwner | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const socket = createConnection({ path: socketName(dir) });
    socket.setEncoding('utf8');
    socket.setTimeout(ASK_HOLDER_TIMEOUT_MS, () => socket.destroy());
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(parseOwner(text)));
  });
}

/** The owner file, created atomically (a complete file or none), or taken over from a dead holder. */
async function claimOwnerFile(stateDir: string, ownerFile: string, me: LockOwner, wallMs: () => number): Promise<void> {
  const draft = `${ownerFile}.${process.pid}.tmp`;
  try {
    const handle = await open(draft, 'w');
    try {
      await handle.writeFile(`${JSON.stringify(me)}\n`);
      await handle.datasync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    // EROFS, ENOSPC, EACCES: the dir is not locked by anyone; it cannot be written at all.
    // Best effort: a draft may not even exist; the error that matters is the one thrown.
    await rm(draft, { force: true }).catch(() => undefined);
    throw new StateDirUnwritableError(stateDir, error);
  }
  try {
    try {
      await link(draft, ownerFile);
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
      const holder = await readOwner(ownerFile);
      if (holder !== undefined && !holderIsDead(holder, me)) {
        throw new StateDirLockedElsewhereError(stateDir, holder, ownerFile, wallMs() - holder.since);
      }
      // We hold the socket, so the holder that wrote this file is dead: replace it.
      await rename(draft, ownerFile);
    }
    await syncDirectory(stateDir);
  } finally {
    await rm(draft, { force: true });
  }
}

/**
 * Whether the holder named by an owner file is certainly dead, given that this process holds
 * the socket: it lived in this namespace (its socket would be ours to see), or on an earlier
 * boot of this host. An unreadable file was not written by a live holder (it is linked whole).
 */
function holderIsDead(holder: LockOwner, me: LockOwner): boolean {
  if (holder.host !== me.host) return false;
  if (holder.bootId !== '' && me.bootId !== '' && holder.bootId !== me.bootId) return true;
  // An owner file without a namespace was written by aistock 0.1 on this host.
  return holder.netns === '' || holder.netns === me.netns;
}

async function releaseOwnerFile(ownerFile: string, me: LockOwner): Promise<void> {
  const holder = await readOwner(ownerFile);
  // Only our own: a file someone wrote after taking over a lock we lost is theirs.
  if (holder?.pid === me.pid && holder.since === me.since && holder.host === me.host) await rm(ownerFile, { force: true });
}

async function readOwner(ownerFile: string): Promise<LockOwner | undefined> {
  // No file (the holder is between binding and linking it) is no owner.
  return parseOwner(await readFile(ownerFile, 'utf8').catch(() => ''));
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const parsed = ownerSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    // Not JSON: not an owner this code wrote.
    return undefined;
  }
}

/** This process's network namespace and boot, which decide whether a holder's socket would be visible here. */
async function namespaceOf(): Promise<{ netns: string; bootId: string }> {
  const [netns, bootId] = await Promise.all([
    readlink('/proc/self/ns/net').catch(() => ''),
    readFile('/proc/sys/kernel/random/boot_id', 'utf8').then((text) => text.trim(), () => ''),
  ]);
  return { netns, bootId };
}
