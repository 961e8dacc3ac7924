import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createActor, setup } from 'xstate';
import { runReplayCommand } from '../../src/cli/replayCommand.js';
import { InspectorPortInUseError } from '../../src/inspector/inspectorErrors.js';
import { startLiveView } from '../../src/inspector/liveView.js';
import type { LiveUpdate } from '../../src/inspector/liveViewModel.js';
import { createTradingSession } from '../../src/session/createTradingSession.js';
import { LOCK_OWNER_FILE } from '../../src/stateDir/stateDirLock.js';
import { launchChromium, pageProblems, skipWithoutChromium } from '../support/chromium.js';
import { collect, killIfRunning, lineMatching } from '../support/cliOutput.js';
import { sampleSlice, startCli } from '../support/replayFixture.js';
import { buyOnBars, sessionDeps } from '../support/sessionFixture.js';

/** The session and its eight children, by systemId. */
const TREE = ['session', 'dataGuard', 'bars', 'risk', 'portfolio', 'idempotency', 'checkpointer', 'reconciler', 'broker'] as const;
const within = (ms: number) => ({ signal: AbortSignal.timeout(ms) });

let dir: string;
let bars: string;
const cleanup: (() => unknown)[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aistock-live-'));
  bars = await sampleSlice(dir, 2_000);
});
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** Starts `aistock replay --inspect 0 --wait-for-viewer` and resolves with the live view's URL once it waits. */
async function waitingReplay(stateDir: string) {
  const cli = startCli(['replay', bars, '--state-dir', stateDir, '--inspect', '0', '--wait-for-viewer', '--json']);
  cleanup.push(() => killIfRunning(cli));
  const exited = once(cli, 'exit', within(60_000));
  const stdout = collect(cli.stdout);
  const stderr = collect(cli.stderr);
  const url = await lineMatching(cli.stderr, /^aistock replay: waiting for a viewer at (\S+) before starting/, 30_000);
  return { cli, exited, stdout, stderr, url };
}

/** Reads a Server-Sent Events stream: each event's name and parsed data, as they come. */
async function readStream(url: string) {
  const response = await fetch(url);
  const events: { event: string; data: unknown }[] = [];
  const ended = (async () => {
    let text = '';
    for await (const chunk of response.body ?? []) {
      text += Buffer.from(chunk).toString();
      for (let cut = text.indexOf('\n\n'); cut >= 0; cut = text.indexOf('\n\n')) {
        const [name = '', data = ''] = text.slice(0, cut).split('\n').map((line) => line.slice(line.indexOf(': ') + 2));
        events.push({ event: name, data: JSON.parse(data) });
        text = text.slice(cut + 2);
      }
    }
  })();
  return { status: response.status, type: response.headers.get('content-type'), events, ended };
}

describe('startLiveView', () => {
  it('streams to a viewer the whole view on connect, then updates as the actors run, then end on stop', async () => {
    const live = await startLiveView({ port: 0, flushMs: 10 });
    cleanup.push(() => live.stop());
    const waiting = live.viewerConnected();

    const stream = await readStream(`${live.url}events`);
    expect(await waiting).toBe(true);
    const session = createTradingSession({ ...(await sessionDeps()), strategy: buyOnBars([]), inspect: live.inspect });
    await session.start();
    await session.stop();
    await vi.waitFor(() => expect(stream.events.filter((e) => e.event === 'update').length).toBeGreaterThan(0));
    await live.stop();
    await stream.ended;

    expect(stream.type).toBe('text/event-stream');
    expect(stream.events[0]).toMatchObject({ event: 'view', data: { actors: [], eventCount: 0 } });
    expect(stream.events.at(-1)?.event).toBe('end');
    const shown = stream.events.flatMap((e) => (e.event === 'update' ? (e.data as LiveUpdate).actors : []));
    expect(shown.filter((a) => a.name === 'session').at(-1)?.state).toBe('"shutdown"');
    expect(live.viewers()).toBe(0);
  });

  it('serves Mermaid from node_modules and its page with a policy that allows only itself; 404 elsewhere', async () => {
    const live = await startLiveView({ port: 0 });
    cleanup.push(() => live.stop());

    const page = await fetch(live.url);
    const mermaid = await fetch(`${live.url}mermaid.min.js`);
    const missing = await fetch(`${live.url}nothing`);

    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await page.text()).toContain('<script src="/mermaid.min.js"></script>');
    expect((await mermaid.arrayBuffer()).byteLength).toBe((await stat(createRequire(import.meta.url).resolve('mermaid/dist/mermaid.min.js'))).size);
    expect(missing.status).toBe(404);
  });

  it('drops a viewer that stops reading once it is more than maxBacklogBytes behind, counts it, and keeps the one that reads', async () => {
    const live = await startLiveView({ port: 0, flushMs: 10, eventsShown: 2_000, maxBacklogBytes: 256 * 1024 });
    cleanup.push(() => live.stop());
    // A page that subscribes, then never reads: what it is sent piles up in the kernel, then in its socket.
    const stalled = connect(live.port, '127.0.0.1');
    cleanup.push(() => stalled.destroy());
    await once(stalled, 'connect');
    stalled.pause();
    stalled.write('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const reader = await readStream(`${live.url}events`);
    await vi.waitFor(() => expect(live.viewers()).toBe(2));
    const actor = createActor(setup({}).createMachine({ id: 'echo', on: { PING: {} } }), { inspect: live.inspect }).start();
    const note = 'x'.repeat(200);

    // Each round: 2,000 events (an update of ~0.5 MB), sent once the reader has taken the last one whole.
    let rounds = 0;
    while (live.viewersDropped() === 0 && rounds < 60) {
      rounds += 1;
      const seen = reader.events.length;
      for (let i = 0; i < 2_000; i += 1) actor.send({ type: 'PING', rounds, i, note });
      await vi.waitFor(() => expect(reader.events.length).toBeGreaterThan(seen), { timeout: 5_000 });
    }
    actor.stop();

    // Dropped at some round (how many the kernel's loopback buffers absorb first is the machine's:
    // ~4 MB here), while the reader took every round whole.
    expect(live.viewersDropped()).toBe(1);
    expect(live.viewers()).toBe(1);
    // The dropped page's connection is closed by the server (whether it then sees an end or a reset).
    stalled.on('error', () => undefined);
    stalled.resume();
    await once(stalled, 'close', within(5_000));
    await live.stop();
    await reader.ended;
    expect(reader.events.at(-1)?.event).toBe('end');
  });

  it('says false when waiting for a viewer is given up, and refuses a port in use naming it', async () => {
    const live = await startLiveView({ port: 0 });
    cleanup.push(() => live.stop());
    const giveUp = new AbortController();

    const waiting = live.viewerConnected(giveUp.signal);
    giveUp.abort();
    const error: unknown = await startLiveView({ port: live.port }).catch((e: unknown) => e);

    expect(await waiting).toBe(false);
    expect(error).toBeInstanceOf(InspectorPortInUseError);
    expect(error).toMatchObject({ code: 'INSPECTOR_PORT_IN_USE', port: live.port });
  });
});

describe('aistock replay --wait-for-viewer', () => {
  it('refuses --wait-for-viewer without --inspect as a usage error naming both', async () => {
    let stderr = '';
    const code = await runReplayCommand([bars, '--wait-for-viewer'], { stdout: { write: () => true }, stderr: { write: (text: string) => (stderr += text) } });

    expect(code).toBe(2);
    expect(stderr).toContain('--wait-for-viewer needs --inspect');
  });

  it('exits 130 on SIGINT while it waits, having replayed nothing and holding no lock', async () => {
    const stateDir = join(dir, 'interrupted');
    const replay = await waitingReplay(stateDir);

    replay.cli.kill('SIGINT');
    const [code] = await replay.exited;

    expect(code).toBe(130);
    expect(replay.stderr.text()).toContain('interrupted while waiting for a viewer: nothing was replayed');
    expect(replay.stdout.text()).toBe('');
    expect(existsSync(join(stateDir, LOCK_OWNER_FILE))).toBe(false);
  });
});

describe.skipIf(skipWithoutChromium('test/inspector/liveView.test.ts'))('the live view in headless Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('holds the replay until the page is open, then shows the session tree, its diagrams and the states lit as they change', async () => {
    const replay = await waitingReplay(join(dir, 'watched'));
    const origin = new URL(replay.url).origin;
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    // Nothing may be fetched but from the live view's own server.
    const problems = pageProblems(page, (url) => new URL(url).origin === origin);
    // Every state each card shows, with the boxes lit in its diagram, as the page shows it.
    await page.addInitScript(`
      window.shown = [];
      new MutationObserver((records) => {
        for (const record of records) {
          const card = record.target;
          const lit = [...card.querySelectorAll('[data-live-active]')].map((node) => node.getAttribute('data-live-active'));
          window.shown.push({ actor: card.getAttribute('data-actor'), state: card.getAttribute('data-state'), lit: lit.join(' '), events: document.querySelectorAll('#events li').length });
        }
      }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-state'] });
    `);

    // Still waiting, with no viewer: nothing has started.
    expect(replay.cli.exitCode).toBeNull();
    await page.goto(replay.url);
    const [code] = await replay.exited;
    await page.waitForSelector('body[data-status="ended"]');

    expect(code, replay.stderr.text()).toBe(0);
    expect(JSON.parse(replay.stdout.text())).toMatchObject({ bars: { accepted: 2_000 } });
    // The session tree: the session, its eight children under it.
    for (const name of TREE) expect(await page.locator(`#tree [data-tree-actor="${name}"]`).count(), name).toBe(1);
    expect(await page.locator('#tree > [data-tree-actor="session"] > ul > li').evaluateAll((items) => items.map((item) => item.getAttribute('data-tree-actor')))).toEqual(
      expect.arrayContaining(TREE.slice(1)),
    );
    // A card per actor with its machine's diagram drawn as an SVG.
    for (const name of TREE) expect(await page.locator(`[data-actor="${name}"][data-drawn] .diagram svg`).count(), name).toBe(1);
    const shown = (await page.evaluate('window.shown')) as { actor: string; state: string; lit: string; events: number }[];
    // The session started only after this page had subscribed: the first state it was shown is idle.
    expect(shown.find((s) => s.actor === 'session')).toMatchObject({ state: '"idle"', lit: 'idle' });
    // The lit states changed as the replay ran, for the session, risk and bars alike.
    const litOf = (actor: string): string[] => [...new Set(shown.filter((s) => s.actor === actor && s.lit !== '').map((s) => s.lit))];
    // (The page is sent what changed every 100 ms, so a state shorter than that may be skipped: only the order is fixed.)
    const session = litOf('session');
    const firstIndex = (prefix: string): number => session.findIndex((lit) => lit.startsWith(prefix));
    expect(session[0]).toBe('idle');
    expect(firstIndex('starting ')).toBeGreaterThan(0);
    expect(firstIndex('running ')).toBeGreaterThan(firstIndex('starting '));
    expect(session.at(-1)).toBe('shutdown');
    expect(litOf('risk')).toEqual(expect.arrayContaining(['running running_active']));
    expect(litOf('risk').at(-1)).toBe('shutdown');
    expect(litOf('bars')).toEqual(expect.arrayContaining(['running']));
    expect(litOf('bars').at(-1)).toBe('shutdown');
    expect(await page.locator('[data-actor="risk"] [data-live-active]').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-live-active')))).toEqual(['shutdown']);
    // The event list grew as it ran, newest first, bounded.
    const counts = shown.map((s) => s.events);
    expect(Math.max(...counts)).toBeGreaterThan(Math.min(...counts));
    const seqs = await page.locator('#events li').evaluateAll((items) => items.map((item) => Number(item.getAttribute('data-seq'))));
    expect(seqs.length).toBe(200);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
    expect(problems).toEqual([]);
  }, 60_000);
});
