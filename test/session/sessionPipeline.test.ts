import { FillCounts } from '../../src/session/fillCounts.js';
import { SymbolMap } from '../../src/common/keyed.js';
import { describe, expect, it } from 'vitest';
import type { Bar } from '../../src/bars/bar.js';
import {
  approvedOrders,
  bookOutcomes,
  createPipeline,
  recordAdmitted,
  runStrategy,
  skipResumed,
  splitPipeline,
  touchesHeld,
  withPositions,
  type DecidedState,
  type PlannedOrder,
} from '../../src/session/sessionPipeline.js';
import type { Strategy } from '../../src/strategy/strategy.js';
import type { TimeframeBar } from '../../src/bars/timeframe.js';
import { buyOnBars } from '../support/sessionFixture.js';

const START = Date.UTC(2025, 10, 3, 14, 30);
const bar = (symbol: string, minute: number, close: number): Bar => ({
  symbol,
  ts: START + minute * 60_000,
  open: close,
  high: close,
  low: close,
  close,
  volume: 1_000,
});
const decidedFor = (strategy: Strategy): DecidedState => splitPipeline(createPipeline(strategy)).decided;
const ctx = (strategy: Strategy) => ({ strategy, sessionId: 's' });
const NOTHING = new Map<number, TimeframeBar[]>();

describe('runStrategy', () => {
  it('walks to the first bar with intents and stops there, with that bar’s requests', () => {
    const strategy = buyOnBars([2]);
    const bars = [bar('AAA', 0, 100), bar('AAA', 1, 101), bar('AAA', 2, 102)];
    const run = runStrategy(decidedFor(strategy), bars, NOTHING, 0, ctx(strategy));
    expect(run.stop).toBe(1);
    expect(run.failure).toBeNull();
    expect(run.requests).toHaveLength(1);
    expect(run.requests[0]).toMatchObject({ intent: { symbol: 'AAA', side: 'buy' }, price: 101 });
  });

  it('walks to the end when no bar asks for anything', () => {
    const strategy = buyOnBars([]);
    const run = runStrategy(decidedFor(strategy), [bar('AAA', 0, 100), bar('AAA', 1, 101)], NOTHING, 0, ctx(strategy));
    expect(run).toMatchObject({ stop: 2, requests: [], failure: null });
  });

  it('stops at a bar where the strategy throws, naming the bar, without deciding it', () => {
    const throwing: Strategy = { ...buyOnBars([]), id: 'boom', onBar: () => { throw new Error('kaput'); } };
    const run = runStrategy(decidedFor(throwing), [bar('AAA', 0, 100)], NOTHING, 0, ctx(throwing));
    expect(run.stop).toBe(0);
    expect(run.failure).toMatchObject({ symbol: 'AAA', barTs: START, detail: expect.stringContaining('kaput') });
  });

  it('refuses an intent whose quantity is a number, not a decimal string', () => {
    const sloppy: Strategy = {
      ...buyOnBars([]),
      onBar: (state) => ({ state, intents: [{ symbol: 'AAA', side: 'buy', type: 'market', qty: 10 } as never] }),
    };
    const run = runStrategy(decidedFor(sloppy), [bar('AAA', 0, 100)], NOTHING, 0, ctx(sloppy));
    expect(run.failure?.detail).toMatch(/invalid intent #0/);
  });
});

describe('the session’s own bookkeeping', () => {
  it('skips bars at or before the resume point of their symbol, counting them', () => {
    const decided = { ...decidedFor(buyOnBars([])), resumeAfter: new SymbolMap([['AAA', START + 60_000]]) };
    const { decided: after, fresh } = skipResumed(decided, [bar('AAA', 0, 1), bar('AAA', 1, 1), bar('AAA', 2, 1), bar('BBB', 0, 1)]);
    expect(fresh.map((b) => `${b.symbol}${b.ts - START}`)).toEqual(['AAA120000', 'BBB0']);
    expect(after.resumedSkips).toBe(2);
  });

  it('records the newest time and close per symbol of admitted bars', () => {
    const after = recordAdmitted(decidedFor(buyOnBars([])), [bar('AAA', 0, 1), bar('AAA', 1, 2), bar('BBB', 0, 3)]);
    expect(after.lastTs.toJSON()).toEqual({ AAA: START + 60_000, BBB: START });
    expect(after.lastClose.toJSON()).toEqual({ AAA: 2, BBB: 3 });
  });

  it('knows whether a run touches a held symbol', () => {
    const holding = withPositions(decidedFor(buyOnBars([])), [['AAA', '5']]);
    const bars = [bar('BBB', 0, 1), bar('AAA', 1, 1)];
    expect(touchesHeld(holding, bars, 0, 1)).toBe(false);
    expect(touchesHeld(holding, bars, 0, 2)).toBe(true);
    expect(touchesHeld(withPositions(holding, [['AAA', '0']]), bars, 0, 2)).toBe(false);
  });

  it('plans the approved requests and lists the denied ones with their reasons', () => {
    const strategy = buyOnBars([1]);
    const requests = runStrategy(decidedFor(strategy), [bar('AAA', 0, 100)], NOTHING, 0, ctx(strategy)).requests;
    const denial = { verdict: 'deny' as const, reasons: [{ code: 'TRADING_HALTED' as const, detail: 'halted' }] };
    expect(approvedOrders(bar('AAA', 0, 100), requests, [{ verdict: 'approve' }]).orders).toHaveLength(1);
    const denied = approvedOrders(bar('AAA', 0, 100), requests, [denial]);
    expect(denied.orders).toEqual([]);
    expect(denied.denied[0]?.reasons).toEqual(denial.reasons);
  });

  it('books outcomes: reserved ids count, refused ones free their slot, fills already applied are not applied again', () => {
    const order = (id: string): PlannedOrder => ({ clientOrderId: id, intent: { symbol: 'AAA', side: 'buy', type: 'market', qty: '1' }, barTs: START, price: 1 });
    const fill = (id: string) => ({ clientOrderId: id, symbol: 'AAA', side: 'buy' as const, qty: '1', price: '1', commission: '0', filledAt: START });
    const booked = bookOutcomes(
      [
        { kind: 'submitted', order: order('a'), fills: [fill('a')] },
        { kind: 'duplicate', order: order('b'), fills: [fill('b')] },
        { kind: 'refused', order: order('c'), reason: { code: 'STOPPING', detail: 'x' } },
        { kind: 'settled', order: order('d'), fills: [fill('d')] },
      ],
      FillCounts.of({ b: 1 }),
    );
    expect(booked.reserved).toEqual(['a', 'b']);
    expect(booked.released).toEqual(['c']);
    expect(booked.fresh.map((f) => f.clientOrderId)).toEqual(['a', 'd']);
    expect(booked.appliedFills.toJSON()).toEqual({ a: 1, b: 1, d: 1 });
    expect(booked.appliedFills.total).toBe(3);
  });
});
