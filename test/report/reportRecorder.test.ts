import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { formatMoney, parseMoney } from '../../src/common/money.js';
import type { Summary } from '../../src/session/createTradingSession.js';
import { createSessionEvents, type SessionEvent } from '../../src/session/sessionEvents.js';
import { maxDrawdown, nextPoint, type CurvePoint } from '../../src/report/equityCurve.js';
import { startReportRecorder } from '../../src/report/reportRecorder.js';
import { CURVE_BUDGET, readRecording, REPORT_DIR } from '../../src/report/reportStore.js';
import { ManualClock } from '../../src/common/clock.js';

const MINUTE = 60_000;
const T0 = Date.UTC(2025, 9, 20, 13, 30);

function fakeSession(startEquity = '100000.00') {
  const events = createSessionEvents(() => undefined);
  const snapshot = () => ({ portfolio: { equity: startEquity }, risk: { state: 'active' } }) as unknown as Summary;
  return { emit: (event: SessionEvent) => events.emit(event), session: { on: events.on, snapshot } };
}

const equity = (minute: number, value: number, gross = 0): SessionEvent => ({
  type: 'equity',
  at: T0 + minute * MINUTE,
  equity: value.toFixed(2),
  cash: (value - gross).toFixed(2),
  grossExposure: gross.toFixed(2),
});
const checkpointWritten: SessionEvent = { type: 'checkpoint', result: 'written', written: 1, failed: 0 };

/** A deterministic wiggly equity series, in cents-exact steps. */
const wiggle = (i: number): number => 100_000 + Math.round(400 * Math.sin(i / 97) + 150 * Math.sin(i / 13) + ((i * 7919) % 61));

let stateDir: string;
const warnings: string[] = [];
const warn = (message: string): void => {
  warnings.push(message);
};

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'aistock-recorder-'));
  warnings.length = 0;
});

describe('startReportRecorder', () => {
  it('records one point per bar time (the last reading at it), denials and risk changes, and the run’s end', async () => {
    const { emit, session } = fakeSession();
    const recorder = await startReportRecorder({ stateDir, session, file: null, warn, clock: new ManualClock({ wallMs: 1_000 }) });
    emit(equity(0, 100_000.5));
    emit(equity(0, 100_001));
    emit(equity(1, 99_990, 500));
    emit({ type: 'denied', clientOrderId: 'AAPL-x', symbol: 'AAPL', side: 'buy', qty: '1', barTs: T0 + MINUTE, reasons: [{ code: 'RATE_LIMIT_DAY', detail: 'd' }] });
    emit({ type: 'riskState', state: 'halted', haltReasons: [{ code: 'MAX_DRAWDOWN', detail: 'x', at: T0 + MINUTE }], reduceReason: null });
    emit(equity(2, 99_995));

    const figures = await recorder.finish({ summary: { portfolio: { equity: '99995.00' } } as unknown as Summary, inputRejected: { MALFORMED_ROW: 1 } });

    const recording = await readRecording(stateDir);
    expect(recording.points.map((p) => [p.at - T0, formatMoney(p.equity), formatMoney(p.peak)])).toEqual([
      [0, '100001.00', '100001.00'],
      [MINUTE, '99990.00', '100001.00'],
      [2 * MINUTE, '99995.00', '100001.00'],
    ]);
    expect(recording.denials).toEqual([{ id: 'AAPL-x', at: T0 + MINUTE, symbol: 'AAPL', codes: ['RATE_LIMIT_DAY'] }]);
    expect(recording.risk).toMatchObject([{ at: T0 + MINUTE, state: 'halted' }]);
    expect(recording.runs.map((line) => line.kind)).toEqual(['start', 'end']);
    expect(figures?.maxDrawdown?.amount).toBe(parseMoney('11'));
    expect(warnings).toEqual([]);
  });

  it('keeps the curve within its budget over a long run, with the max drawdown of every reading', async () => {
    const { emit, session } = fakeSession();
    const recorder = await startReportRecorder({ stateDir, session, file: null, warn });
    const all: CurvePoint[] = [];
    let peak: bigint | null = parseMoney('100000');
    for (let i = 0; i < 30_000; i += 1) {
      const value = wiggle(i);
      emit(equity(i, value, i % 50));
      const point = nextPoint(peak, T0 + i * MINUTE, parseMoney(value.toFixed(2)), 0n, 0n);
      peak = point.peak;
      all.push(point);
      if (i % 1_000 === 999) emit(checkpointWritten);
    }

    const figures = await recorder.finish(null);

    const recording = await readRecording(stateDir);
    const lines = (await readFile(join(stateDir, REPORT_DIR, 'equity.jsonl'), 'utf8')).trim().split('\n');
    expect(lines.length - 1).toBeLessThanOrEqual(CURVE_BUDGET);
    expect(recording.header?.bucketMs).toBeGreaterThan(MINUTE);
    const expected = maxDrawdown(all);
    expect(figures?.maxDrawdown).toMatchObject({ ratio: expected?.ratio, amount: expected?.amount, at: expected?.at, peakAt: expected?.peakAt });
    expect(maxDrawdown(recording.points)?.ratio).toBe(expected?.ratio);
  });

  it('a resumed run appends, and after a crash skips the readings already on file', async () => {
    // The uninterrupted run.
    const whole = fakeSession();
    const wholeDir = await mkdtemp(join(tmpdir(), 'aistock-recorder-whole-'));
    const uninterrupted = await startReportRecorder({ stateDir: wholeDir, session: whole.session, file: null, warn });
    for (let i = 0; i < 3_000; i += 1) whole.emit(equity(i, wiggle(i)));
    const expected = await uninterrupted.finish(null);

    // Run 1 records up to minute 2,000 and checkpoints at 1,500; it dies without finishing.
    const first = fakeSession();
    await startReportRecorder({ stateDir, session: first.session, file: null, warn });
    for (let i = 0; i < 1_500; i += 1) first.emit(equity(i, wiggle(i)));
    first.emit(checkpointWritten);
    for (let i = 1_500; i < 2_000; i += 1) first.emit(equity(i, wiggle(i)));
    // What the checkpoint flushed reaches the file (minutes 0..1,498, and 1,499 provisional); then the "crash".
    await vi.waitFor(async () => expect((await readRecording(stateDir)).provisional?.at).toBe(T0 + 1_499 * MINUTE));
    expect((await readRecording(stateDir)).points).toHaveLength(1_499);

    // Run 2 resumes from a checkpoint at minute 1,200: it reports 1,200.. again.
    const second = fakeSession();
    const resumed = await startReportRecorder({ stateDir, session: second.session, file: null, warn });
    for (let i = 1_200; i < 3_000; i += 1) second.emit(equity(i, wiggle(i)));
    const figures = await resumed.finish(null);

    const recording = await readRecording(stateDir);
    expect(recording.runs.filter((line) => line.kind === 'start').map((line) => line.run)).toEqual([1, 2]);
    const times = recording.points.map((p) => p.at);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(figures?.maxDrawdown).toEqual(expected?.maxDrawdown);
    expect(recording.points.at(-1)).toEqual((await readRecording(wholeDir)).points.at(-1));
  });

  it('never throws into the session: a state dir it cannot write warns once and records nothing', async () => {
    await writeFile(join(stateDir, REPORT_DIR), 'a file where the folder should be');
    const { emit, session } = fakeSession();

    const recorder = await startReportRecorder({ stateDir, session, file: null, warn });
    emit(equity(0, 100_000));

    expect(await recorder.finish(null)).toBeNull();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/could not start/);
  });

  it('an event it cannot read turns it off with one warning, and the session’s other listeners still run', async () => {
    const { emit, session } = fakeSession();
    const recorder = await startReportRecorder({ stateDir, session, file: null, warn });
    let seen = 0;
    session.on('equity', () => (seen += 1));

    emit({ type: 'equity', at: T0, equity: 'not money', cash: '0', grossExposure: '0' });
    emit(equity(1, 100_000));

    expect(seen).toBe(2);
    expect(await recorder.finish(null)).toBeNull();
    expect(warnings).toHaveLength(1);
  });
});
