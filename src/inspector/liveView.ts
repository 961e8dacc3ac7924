import { createReadStream } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AnyStateMachine, InspectionEvent, Observer } from 'xstate';
import { z } from 'zod';
import { describeError, OptionalPackageUnavailableError } from '../common/errors.js';
import { DOCUMENTED_MACHINES } from '../docs/machinesDocument.js';
import { InspectorPortInUseError, InspectorStartError } from './inspectorErrors.js';
import { LiveModel } from './liveViewModel.js';
import { LIVE_VIEW_SCRIPT, liveViewHtml } from './liveViewPage.js';

/**
 * The live view: a page of aistock's own that needs no internet, beside the Stately relay. It
 * draws every actor's machine from its definition (the diagrams of `aistock diagrams`, rendered
 * in the browser by the Mermaid build this server serves from node_modules), highlights each
 * actor's current states as the session runs, and lists the newest events.
 *
 * The server listens on loopback only (unlike the relay): `GET /` the page, `/live.js` its
 * script, `/mermaid.min.js` Mermaid, `/diagrams` the diagrams as JSON, `/events` the stream
 * (Server-Sent Events: a `view` with everything on connect, then an `update` with what changed
 * every {@link LiveViewOptions.flushMs}, and `end` on stop). Its Content-Security-Policy allows
 * nothing but this server, so the page cannot fetch from the internet even by mistake.
 *
 * `mermaid` is an optional peer dependency: its build is found when the view starts, and
 * without it {@link startLiveView} throws {@link LiveViewUnavailableError}.
 */

/** Options of {@link startLiveView}. */
export const LiveViewOptionsSchema = z.object({
  /** Port on 127.0.0.1; 0 picks a free one. */
  port: z.number().int().min(0).max(65_535).default(8081),
  /** Events the page lists, the newest. */
  eventsShown: z.number().int().positive().default(200),
  /** States each actor's trail keeps, the newest. */
  trailLength: z.number().int().positive().default(12),
  /** How often what changed is sent to the viewers. */
  flushMs: z.number().int().positive().default(100),
  /** A viewer this far behind (bytes its socket has not taken yet) is dropped; its page reconnects and gets the whole view. */
  maxBacklogBytes: z.number().int().positive().default(4 * 1024 * 1024),
});

/** Options of {@link startLiveView} as callers write them (every field optional), and the machines drawn up front. */
export type LiveViewOptions = z.input<typeof LiveViewOptionsSchema> & {
  /** Diagrams drawn before any actor runs (default: every machine of `aistock/machines`); others when an actor runs one. */
  machines?: readonly AnyStateMachine[];
};

/** A running live view. */
export interface RunningLiveView {
  /** The page to open. */
  readonly url: string;
  readonly port: number;
  /** Pass to actors (`createActor(logic, { inspect })`), or call from another observer. */
  readonly inspect: Observer<InspectionEvent>;
  /** Viewers subscribed now. */
  viewers(): number;
  /** Viewers dropped so far for falling more than `maxBacklogBytes` behind (a page too slow, or one that stopped reading). */
  viewersDropped(): number;
  /**
   * Resolves true once a page has drawn its diagrams and subscribed (at once if one has), false
   * if `signal` aborts first: how `--wait-for-viewer` holds a session's start.
   */
  viewerConnected(signal?: AbortSignal): Promise<boolean>;
  /** Sends what is left and `end` to the viewers, then closes them and the server; the same promise every time. */
  stop(): Promise<void>;
}

/** The package that draws the diagrams, an optional peer dependency of aistock. */
export const LIVE_VIEW_PACKAGE = 'mermaid';

/**
 * The live view's package, `mermaid` (an optional peer dependency of aistock), is not installed:
 * `npm install mermaid` (12) and start it again. Not retryable.
 */
export class LiveViewUnavailableError extends OptionalPackageUnavailableError {
  constructor(cause: unknown) {
    super('LIVE_VIEW_UNAVAILABLE', 'the live view', LIVE_VIEW_PACKAGE, '^12.3.0', cause);
  }
}

/** Longest wait on stop for the viewers to be handed their last messages. */
const STOP_GRACE_MS = 1_000;

/** Where Mermaid's single-file build is; its absence is a {@link LiveViewUnavailableError}. */
function mermaidBuild(): string {
  try {
    return createRequire(import.meta.url).resolve(`${LIVE_VIEW_PACKAGE}/dist/mermaid.min.js`);
  } catch (error) {
    throw new LiveViewUnavailableError(error);
  }
}

/**
 * Starts the live view's server; resolves once it listens. Throws {@link LiveViewUnavailableError}
 * without `mermaid`, {@link InspectorPortInUseError} or {@link InspectorStartError}.
 */
export async function startLiveView(options: LiveViewOptions = {}): Promise<RunningLiveView> {
  const config = LiveViewOptionsSchema.parse(options);
  const mermaidFile = mermaidBuild();
  const model = new LiveModel({
    machines: options.machines ?? DOCUMENTED_MACHINES.map((documented) => documented.machine),
    eventsShown: config.eventsShown,
    trailLength: config.trailLength,
    now: () => globalThis.performance.now(),
  });
  const html = liveViewHtml(config.eventsShown);
  const viewers = new Set<ServerResponse>();
  let dropped = 0;
  let onFirstViewer: (() => void) | undefined;
  const firstViewer = new Promise<void>((resolve) => (onFirstViewer = resolve));

  /** One Server-Sent Event, serialized once however many viewers get it. */
  const message = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  const send = (viewer: ServerResponse, text: string): void => {
    if (viewer.destroyed || viewer.writableEnded) return;
    if (viewer.writableLength > config.maxBacklogBytes) {
      viewers.delete(viewer);
      dropped += 1;
      viewer.destroy();
      return;
    }
    viewer.write(text);
  };
  const subscribe = (response: ServerResponse): void => {
    response.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    viewers.add(response);
    response.once('close', () => viewers.delete(response));
    send(response, message('view', model.view()));
    onFirstViewer?.();
  };
  const flush = (): void => {
    const update = model.takeUpdate();
    if (update === null) return;
    const text = message('update', update);
    for (const viewer of viewers) send(viewer, text);
  };

  const server = createServer((request, response) => {
    try {
      route(request, response);
    } catch (error) {
      response.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(describeError(error));
    }
  });
  const route = (request: IncomingMessage, response: ServerResponse): void => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const headers = (type: string): Record<string, string> => ({ 'Content-Type': type, 'Content-Security-Policy': CONTENT_SECURITY_POLICY, 'Cache-Control': 'no-store' });
    switch (path) {
      case '/':
        response.writeHead(200, headers('text/html; charset=utf-8')).end(html);
        return;
      case '/live.js':
        response.writeHead(200, headers('text/javascript; charset=utf-8')).end(LIVE_VIEW_SCRIPT);
        return;
      case '/diagrams':
        response.writeHead(200, headers('application/json')).end(JSON.stringify(model.view().diagrams));
        return;
      case '/mermaid.min.js':
        response.writeHead(200, { ...headers('text/javascript; charset=utf-8'), 'Cache-Control': 'max-age=3600' });
        createReadStream(mermaidFile)
          .on('error', (error) => response.destroy(error))
          .pipe(response);
        return;
      case '/events':
        subscribe(response);
        return;
      case '/favicon.ico':
        response.writeHead(204).end();
        return;
      default:
        response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`no ${path} here: the live view is at /\n`);
    }
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => {
      if ((error as { code?: unknown }).code === 'EADDRINUSE') reject(new InspectorPortInUseError(config.port, error));
      else reject(new InspectorStartError(`the live view cannot listen on port ${config.port}: ${describeError(error)}`, error));
    });
    server.listen({ port: config.port, host: '127.0.0.1' }, resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const timer = setInterval(flush, config.flushMs);
  timer.unref();

  let stopping: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    inspect: { next: (event) => model.observe(event) },
    viewers: () => viewers.size,
    viewersDropped: () => dropped,
    viewerConnected: async (signal) => {
      if (signal?.aborted === true) return viewers.size > 0;
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<boolean>((resolve) => {
        onAbort = () => resolve(false);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      try {
        return await Promise.race([firstViewer.then(() => true), aborted]);
      } finally {
        if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
      }
    },
    stop: () => {
      stopping ??= (async () => {
        clearInterval(timer);
        flush();
        const ended = [...viewers].map((viewer) => {
          send(viewer, message('end', {}));
          return new Promise<void>((resolve) => viewer.end(resolve));
        });
        // The last update and `end` are handed to the sockets (a viewer that reads nothing is not waited for long).
        let grace: NodeJS.Timeout | undefined;
        await Promise.race([Promise.all(ended), new Promise((resolve) => (grace = setTimeout(resolve, STOP_GRACE_MS)))]);
        clearTimeout(grace);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // A page still downloading Mermaid, or a keep-alive socket: closed, not waited for.
        server.closeAllConnections();
        await closed;
      })();
      return stopping;
    },
  };
}

/** Only this server: scripts, styles (Mermaid's SVGs carry inline styles), images, fonts, the stream. */
const CONTENT_SECURITY_POLICY = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; object-src 'none'; base-uri 'none'";
