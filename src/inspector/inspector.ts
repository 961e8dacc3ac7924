import { spawn } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, Socket } from 'node:net';
import type { createWebSocketInspector } from '@statelyai/inspect';
import type { createInspectorServer } from '@statelyai/inspect/server';
import type { AnyEventObject, InspectionEvent, Observer, Snapshot } from 'xstate';
import { z } from 'zod';
import { AistockError, describeError, isPackageMissing, OptionalPackageUnavailableError } from '../common/errors.js';
import { boundedView } from './boundedView.js';
import { InspectorPortInUseError, InspectorStartError } from './inspectorErrors.js';
import { startLiveView, type RunningLiveView } from './liveView.js';

export { InspectorPortInUseError, InspectorStartError } from './inspectorErrors.js';

/**
 * The Stately inspector for a running session: `@statelyai/inspect`'s local relay (an HTTP page
 * that embeds the hosted Stately UI, plus a WebSocket server) and its WebSocket client, whose
 * `inspect` observer streams every actor it is given to the relay.
 *
 * The package leaves four gaps that a command line cannot live with; this module closes them:
 * - a port in use is thrown as an uncaught exception from inside the relay: the port is tried
 *   first, so it becomes an {@link InspectorPortInUseError} (a port taken in the microseconds
 *   between the try and the relay's own `listen` still crashes: the package offers no hook);
 * - the relay's `stop()` closes the listener but not the browsers connected to it, which keep
 *   Node alive: the connections it accepts are tracked through `node:diagnostics_channel` and
 *   ended (after their pending writes) on stop;
 * - the client retries every 5 s for good after a failed connect, and `stop()` on a socket still
 *   connecting counts as one: start waits until the client is connected, stop until it is closed;
 * - the client hands each event over on a later timer tick: stop lets those ticks run first, so
 *   the last events (the session's `STOP`) reach the relay.
 * The relay listens on every interface (the package has no host option): on a shared network,
 * anyone who reaches the port sees the session's events.
 *
 * With `liveView: true` it also starts aistock's own offline page on the next port (see
 * {@link startLiveView}), fed by the same `inspect` observer.
 *
 * `@statelyai/inspect` is an optional peer dependency: it is loaded only when an inspector
 * starts, so a program that never inspects neither installs nor loads it (and its WebSocket and
 * serialization packages); without it, {@link startInspector} throws {@link InspectorUnavailableError}.
 *
 * The client serializes every snapshot whole, three times over; a session's context (bar
 * histories, the idempotency journal) runs to hundreds of kilobytes, which made a replay ten
 * times slower. The inspector is shown a bounded view instead: see {@link boundedView}.
 */

/** Options of {@link startInspector}. */
export const InspectorOptionsSchema = z.object({
  /** Port of the relay (page and WebSocket); 0 picks a free one. */
  port: z.number().int().min(0).max(65_535).default(8080),
  /**
   * Open the page to watch in the default browser (only ever when stderr is a terminal, unless
   * `openPage` is given): the live view when it runs (it needs no internet), else the relay's page.
   */
  open: z.boolean().default(false),
  /** Longest wait for the client to connect to the relay. */
  connectTimeoutMs: z.number().int().positive().default(5_000),
  /**
   * Also serve the offline live view (see {@link startLiveView}; needs the optional package
   * `mermaid`) on the next port, `port + 1` (a free one when `port` is 0).
   */
  liveView: z.boolean().default(false),
});

/** Options of {@link startInspector} as callers write them (every field optional), and how a page is opened. */
export type InspectorOptions = z.input<typeof InspectorOptionsSchema> & {
  /** Opens a page with `open` (default: the system's opener — `open`, `xdg-open` or `start` — when stderr is a terminal). */
  openPage?: (url: string) => void;
};

/** A running inspector: the page to open, the observer to pass to actors, and `stop()`. */
export interface RunningInspector {
  /** The page to open in a browser (it embeds the Stately UI and reads the relay). */
  readonly url: string;
  /** The port the relay listens on (the one asked for, or the free one picked for 0). */
  readonly port: number;
  /** Pass to `createTradingSession({ inspect })` or `createActor(logic, { inspect })`. */
  readonly inspect: Observer<InspectionEvent>;
  /** The offline live view, when asked for (`liveView: true`), else null. */
  readonly live: RunningLiveView | null;
  /** Delivers pending events, then closes client, relay, live view and viewers; the same promise every time. */
  stop(): Promise<void>;
}

/** The package the inspector runs on, an optional peer dependency of aistock. */
export const INSPECTOR_PACKAGE = '@statelyai/inspect';

/**
 * The inspector's package, `@statelyai/inspect` (an optional peer dependency of aistock), is not
 * installed: `npm install @statelyai/inspect` (0.7) and start the inspector again. Not retryable.
 */
export class InspectorUnavailableError extends OptionalPackageUnavailableError {
  constructor(cause: unknown) {
    super('INSPECTOR_UNAVAILABLE', 'the inspector', INSPECTOR_PACKAGE, '^0.7.2', cause);
  }
}

interface InspectPackage {
  readonly createWebSocketInspector: typeof createWebSocketInspector;
  readonly createInspectorServer: typeof createInspectorServer;
}

/** Loads `@statelyai/inspect` on first use; its absence is an {@link InspectorUnavailableError}. */
async function loadInspectPackage(): Promise<InspectPackage> {
  try {
    const [client, server] = await Promise.all([import('@statelyai/inspect'), import('@statelyai/inspect/server')]);
    return { createWebSocketInspector: client.createWebSocketInspector, createInspectorServer: server.createInspectorServer };
  } catch (error) {
    throw isPackageMissing(error, INSPECTOR_PACKAGE) ? new InspectorUnavailableError(error) : error;
  }
}

/**
 * Starts the relay on `port` and a client connected to it; resolves once events can flow.
 * Throws {@link InspectorUnavailableError} when `@statelyai/inspect` is not installed,
 * {@link InspectorPortInUseError} or {@link InspectorStartError}.
 */
export async function startInspector(options: InspectorOptions = {}): Promise<RunningInspector> {
  const config = InspectorOptionsSchema.parse(options);
  const { createWebSocketInspector, createInspectorServer } = await loadInspectPackage();
  const { port, live } = await claimPorts(config.port, config.liveView);
  const viewers = trackConnections(port);
  // The relay's own auto-open would open its page, not the live view: the page is opened here once the client is connected.
  const relay = createInspectorServer({ port, autoOpen: false });
  const client = createWebSocketInspector({ url: `ws://127.0.0.1:${port}` });
  try {
    await connected(clientSocket(client.adapter), config.connectTimeoutMs);
  } catch (error) {
    // Only if the relay does not answer on loopback; the client's own 5 s retry cannot be cancelled.
    relay.stop();
    await Promise.all([viewers.close(), live?.stop()]);
    throw error instanceof AistockError ? error : new InspectorStartError(`the inspector client did not connect: ${describeError(error)}`, error);
  }
  const url = `http://localhost:${port}`;
  if (config.open) (options.openPage ?? openInBrowser)(live?.url ?? url);
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    live,
    inspect: {
      next: (event) => {
        client.inspect.next?.(boundedEvent(event));
        live?.inspect.next?.(event);
      },
    },
    stop: () => {
      stopping ??= (async () => {
        // The client converts and sends each event on a `setTimeout(0)` tick; timers of one
        // duration run in order, so once this one has run, every earlier event is on the socket.
        await new Promise((resolve) => setTimeout(resolve, 0));
        const socket = clientSocket(client.adapter);
        const closed =
          socket.readyState === CLOSED ? Promise.resolve() : new Promise<void>((resolve) => socket.addEventListener('close', () => resolve(), { once: true }));
        client.stop();
        // The relay has read (and forwarded) every message once the close handshake is done.
        await closed;
        relay.stop();
        await Promise.all([viewers.close(), live?.stop()]);
      })();
      return stopping;
    },
  };
}

/** Opens `url` with the system's opener, only when stderr is a terminal; an opener missing or failing is ignored (the URL is printed anyway). */
function openInBrowser(url: string): void {
  if (process.stderr.isTTY !== true) return;
  const [command, args]: [string, string[]] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', url]] : ['xdg-open', [url]];
  spawn(command, args, { detached: true, stdio: 'ignore' })
    .on('error', () => undefined)
    .unref();
}

/**
 * The relay's port and, if asked for, the live view on the next one. For port 0 the live view
 * listens first: a free port picked for the relay and let go could otherwise be picked again for it.
 */
async function claimPorts(port: number, liveView: boolean): Promise<{ port: number; live: RunningLiveView | null }> {
  if (!liveView) return { port: await claimPort(port), live: null };
  if (port === 65_535) throw new InspectorStartError("the live view listens on the port after the inspector's: pick an --inspect PORT below 65535");
  if (port !== 0) {
    const claimed = await claimPort(port);
    return { port: claimed, live: await startLiveView({ port: claimed + 1 }) };
  }
  const live = await startLiveView({ port: 0 });
  try {
    return { port: await claimPort(0), live };
  } catch (error) {
    await live.stop();
    throw error;
  }
}

/** Binds `port` the way the relay will (every interface) and lets it go: a refusal is typed. */
async function claimPort(port: number): Promise<number> {
  const probe = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ port }, resolve);
    });
  } catch (error) {
    if ((error as { code?: unknown }).code === 'EADDRINUSE') throw new InspectorPortInUseError(port, error);
    throw new InspectorStartError(`cannot listen on port ${port}: ${describeError(error)}`, error);
  }
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return typeof address === 'object' && address !== null ? address.port : port;
}

/** Every connection accepted on `port` from now on; `close()` ends them once their writes are out. */
function trackConnections(port: number): { close(): Promise<void> } {
  const open = new Set<Socket>();
  const onAccepted = (message: unknown): void => {
    const socket = (message as { socket?: unknown }).socket;
    if (!(socket instanceof Socket) || socket.localPort !== port) return;
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  };
  subscribe('net.server.socket', onAccepted);
  return {
    close: async () => {
      unsubscribe('net.server.socket', onAccepted);
      await Promise.all(
        [...open].map(
          (socket) =>
            new Promise<void>((resolve) => {
              socket.once('close', () => resolve());
              // A browser may never close its side: drop the socket once the relayed events are flushed.
              socket.end(() => socket.destroy());
            }),
        ),
      );
    },
  };
}

/** The client's WebSocket, which `@statelyai/inspect` 0.7 keeps in its adapter's (TS-private) `ws`. */
interface ClientSocket {
  readonly readyState: number;
  addEventListener(type: 'open' | 'close' | 'error', listener: () => void, options: { once: boolean }): void;
}

const OPEN = 1;
const CLOSED = 3;

function clientSocket(adapter: object): ClientSocket {
  const socket: unknown = Reflect.get(adapter, 'ws');
  const usable =
    typeof socket === 'object' &&
    socket !== null &&
    typeof Reflect.get(socket, 'readyState') === 'number' &&
    typeof Reflect.get(socket, 'addEventListener') === 'function';
  if (!usable) throw new InspectorStartError('this @statelyai/inspect version keeps no WebSocket where 0.7 did; the inspector cannot be stopped cleanly');
  return socket as ClientSocket;
}

async function connected(socket: ClientSocket, timeoutMs: number): Promise<void> {
  if (socket.readyState === OPEN) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve(), { once: true });
      socket.addEventListener('error', () => reject(new InspectorStartError('the inspector client could not connect to the relay')), { once: true });
      timer = setTimeout(() => reject(new InspectorStartError(`the inspector client did not connect within ${timeoutMs} ms`)), timeoutMs);
    });
  } finally {
    clearTimeout(timer);
  }
}

const SNAPSHOT_FIELDS = ['status', 'value', 'context', 'output', 'error'] as const;

function boundedEvent(event: InspectionEvent): InspectionEvent {
  switch (event.type) {
    case '@xstate.event':
      return { ...event, event: boundedPayload(event.event) };
    case '@xstate.snapshot': {
      const fields = SNAPSHOT_FIELDS.filter((field) => field in event.snapshot).map((field) => [field, Reflect.get(event.snapshot, field)]);
      return { ...event, event: boundedPayload(event.event), snapshot: boundedView(Object.fromEntries(fields)) as Snapshot<unknown> };
    }
    default:
      return event;
  }
}

function boundedPayload(event: AnyEventObject): AnyEventObject {
  return { ...(boundedView(event) as object), type: event.type };
}
