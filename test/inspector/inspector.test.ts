import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { z } from 'zod';
import { START_STEPS } from '../../machines/session.machine.js';
import { runReplayCommand } from '../../src/cli/replayCommand.js';
import { InspectorPortInUseError, startInspector } from '../../src/inspector/inspector.js';
import { createTradingSession } from '../../src/session/createTradingSession.js';
import { collect, killIfRunning, lineMatching } from '../support/cliOutput.js';
import { sampleSlice, startCli } from '../support/replayFixture.js';
import { buyOnBars, minuteBars, sessionDeps } from '../support/sessionFixture.js';

/** What the relay forwards: `@statelyai/inspect`'s events, only the fields these tests read. */
const InspectorMessageSchema = z.looseObject({
  type: z.enum(['@xstate.actor', '@xstate.event', '@xstate.snapshot']),
  sessionId: z.string(),
  name: z.string().optional(),
  parentId: z.string().optional(),
  event: z.looseObject({ type: z.string() }).optional(),
  snapshot: z.looseObject({ value: z.unknown().optional() }).optional(),
});
type InspectorMessage = z.infer<typeof InspectorMessageSchema>;

/** The session's children: every component, by its systemId. */
const CHILD_IDS = ['dataGuard', 'bars', 'risk', 'portfolio', 'idempotency', 'checkpointer', 'reconciler', 'broker'] as const;

/** A bounded wait for `events.once`. */
const within = (ms: number) => ({ signal: AbortSignal.timeout(ms) });

/** A raw WebSocket client on the relay, as the inspector page is: it records all it is sent. */
async function connectViewer(port: number) {
  const socket = new WebSocket(`ws://127.0.0.1:${port}`);
  const messages: InspectorMessage[] = [];
  socket.on('message', (data) => messages.push(InspectorMessageSchema.parse(JSON.parse(String(data)))));
  const closed = once(socket, 'close', within(20_000));
  await once(socket, 'open', within(10_000));
  return { socket, messages, closed };
}

function registration(messages: readonly InspectorMessage[], name: string): InspectorMessage | undefined {
  return messages.find((m) => m.type === '@xstate.actor' && m.name === name);
}

function statesOf(messages: readonly InspectorMessage[], sessionId: string): string[] {
  return messages.filter((m) => m.type === '@xstate.snapshot' && m.sessionId === sessionId).map((m) => JSON.stringify(m.snapshot?.value));
}

function eventsTo(messages: readonly InspectorMessage[], sessionId: string): string[] {
  return messages.filter((m) => m.type === '@xstate.event' && m.sessionId === sessionId).map((m) => m.event?.type ?? '');
}

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

describe('startInspector', () => {
  it('streams a session to a WebSocket viewer: its actors, their state changes and the STOP', async () => {
    const inspector = await startInspector({ port: 0 });
    cleanup.push(() => inspector.stop());
    const viewer = await connectViewer(inspector.port);
    const session = createTradingSession({ ...(await sessionDeps()), strategy: buyOnBars([2]), inspect: inspector.inspect });

    await session.start();
    await session.ingest(minuteBars(8));
    // While running, every component is a child in the session's system, in its own states.
    for (const id of CHILD_IDS) expect(session.actor.system.get(id), id).toBeDefined();
    expect(session.actor.system.get('risk')?.getSnapshot().value).toEqual({ running: 'active' });
    await session.stop();
    await inspector.stop();
    await viewer.closed;

    const root = registration(viewer.messages, 'session');
    // One tree: each child is registered with the session as its parent.
    for (const id of CHILD_IDS) expect(registration(viewer.messages, id)?.parentId, id).toBe(session.actor.sessionId);
    expect(root?.sessionId).toBe(session.actor.sessionId);
    expect(root?.parentId).toBeUndefined();
    expect(session.actor.system.get('session')).toBe(session.actor);
    expect(registration(viewer.messages, 'checkpointer')).toBeDefined();
    expect(registration(viewer.messages, 'idempotency')).toBeDefined();
    expect(statesOf(viewer.messages, session.actor.sessionId)).toEqual(
      // Every step of the start sequence is visible, in order, then running and the stop.
      expect.arrayContaining([
        ...START_STEPS.map((step) => JSON.stringify({ starting: step })),
        '{"running":"ready"}',
        '"draining"',
        '"shutdown"',
      ]),
    );
    expect(eventsTo(viewer.messages, session.actor.sessionId)).toEqual(expect.arrayContaining(['START', 'BARS', 'STOP']));
    expect(statesOf(viewer.messages, session.actor.sessionId).at(-1)).toBe('"shutdown"');
  });

  it('shows the inspector a bounded view of big payloads: the last bars of a batch, a count of the rest', async () => {
    const inspector = await startInspector({ port: 0 });
    cleanup.push(() => inspector.stop());
    const viewer = await connectViewer(inspector.port);
    const session = createTradingSession({ ...(await sessionDeps()), strategy: buyOnBars([]), inspect: inspector.inspect });

    await session.start();
    await session.ingest(minuteBars(8));
    await session.stop();
    await inspector.stop();
    await viewer.closed;

    const batch = viewer.messages.find((m) => m.type === '@xstate.event' && m.event?.type === 'BARS');
    const shown = z.array(z.unknown()).parse(batch?.event?.['bars']);
    expect(shown).toHaveLength(6);
    expect(shown[0]).toBe('… 3 earlier');
    expect(shown.at(-1)).toMatchObject({ symbol: 'AAPL', close: minuteBars(8).at(-1)?.close });
  });

  it('ends the viewers’ connections on stop and returns the same promise every time', async () => {
    const inspector = await startInspector({ port: 0 });
    const viewer = await connectViewer(inspector.port);

    const first = inspector.stop();
    const second = inspector.stop();
    await first;
    await viewer.closed;

    expect(second).toBe(first);
    expect(viewer.socket.readyState).toBe(WebSocket.CLOSED);
  });

  it('opens the live view when it runs, else the relay’s page, and nothing without open', async () => {
    const opened: string[] = [];
    const openPage = (url: string): void => void opened.push(url);

    const both = await startInspector({ port: 0, liveView: true, open: true, openPage });
    cleanup.push(() => both.stop());
    const relayOnly = await startInspector({ port: 0, open: true, openPage });
    cleanup.push(() => relayOnly.stop());
    const closed = await startInspector({ port: 0, liveView: true, openPage });
    cleanup.push(() => closed.stop());

    expect(opened).toEqual([both.live?.url, relayOnly.url]);
    expect(both.live?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it('refuses a port another server holds with INSPECTOR_PORT_IN_USE naming the port', async () => {
    const holder = await listenOnLoopback();
    cleanup.push(() => new Promise((resolve) => holder.server.close(resolve)));

    const error: unknown = await startInspector({ port: holder.port }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InspectorPortInUseError);
    expect(error).toMatchObject({ code: 'INSPECTOR_PORT_IN_USE', port: holder.port });
    expect(String((error as Error).message)).toContain(String(holder.port));
  });
});

describe('aistock replay --inspect', () => {
  // The bars come through a FIFO, so the replay waits (blocked on reading them) until the
  // viewer is connected, however fast the machine is.
  it.skipIf(process.platform === 'win32')('streams the replay to a viewer, keeps stdout clean, and exits by itself', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistock-inspect-'));
    const fifo = join(dir, 'bars.csv');
    await promisify(execFile)('mkfifo', [fifo]);
    const bars = await readFile(await sampleSlice(dir, 40), 'utf8');
    const cli = startCli(['replay', fifo, '--state-dir', join(dir, 'state'), '--inspect', '0', '--json']);
    cleanup.push(async () => killIfRunning(cli));
    const exited = once(cli, 'exit', within(20_000));
    const stdout = collect(cli.stdout);

    const url = await lineMatching(cli.stderr, /^inspector: (\S+)$/);
    const viewer = await connectViewer(Number(new URL(url).port));
    await writeFile(fifo, bars);
    const [code] = await exited;
    await viewer.closed;

    expect(code).toBe(0);
    expect(url).toMatch(/^http:\/\/localhost:\d+$/);
    expect(JSON.parse(stdout.text().trim())).toMatchObject({ bars: { accepted: 40 } });
    const root = registration(viewer.messages, 'session');
    expect(root).toBeDefined();
    const states = statesOf(viewer.messages, root?.sessionId ?? '');
    expect(states).toEqual(expect.arrayContaining(['{"running":"ready"}', '"draining"']));
    expect(states.at(-1)).toBe('"shutdown"');
    expect(eventsTo(viewer.messages, root?.sessionId ?? '')).toContain('STOP');
  });

  it('prints the live view first, the page it opens, then the relay for the Stately UI', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistock-inspect-'));
    const opened: string[] = [];
    let stderr = '';
    const io = { stdout: { write: () => true }, stderr: { write: (text: string) => (stderr += text) }, openPage: (url: string) => void opened.push(url) };

    const code = await runReplayCommand([await sampleSlice(dir, 20), '--state-dir', join(dir, 'state'), '--inspect', '0', '--json'], io);

    expect(code, stderr).toBe(0);
    const [live, relay] = stderr.split('\n');
    expect(live).toMatch(/^live view: http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(relay).toMatch(/^inspector: http:\/\/localhost:\d+$/);
    expect(opened).toEqual([live?.slice('live view: '.length)]);
  });

  it('exits 1 naming the port when --inspect names a port in use', async () => {
    const holder = await listenOnLoopback();
    cleanup.push(() => new Promise((resolve) => holder.server.close(resolve)));
    const dir = await mkdtemp(join(tmpdir(), 'aistock-inspect-'));
    const cli = startCli(['replay', await sampleSlice(dir, 1), '--state-dir', join(dir, 'state'), '--inspect', String(holder.port)]);
    cleanup.push(async () => killIfRunning(cli));
    const stderr = collect(cli.stderr);

    const [code] = await once(cli, 'exit', within(10_000));

    expect(code).toBe(1);
    expect(stderr.text()).toContain(`INSPECTOR_PORT_IN_USE: port ${holder.port} is in use`);
  });
});

async function listenOnLoopback(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1' }, resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return { server, port: address.port };
}
