import { createActor, type EventFromLogic } from 'xstate';
import { describe, expect, it } from 'vitest';
import { portfolioMachine, type PortfolioEmitted } from '../../machines/portfolio.machine.js';
import { formatMoney, parseQty } from '../../src/common/money.js';
import type { Fill } from '../../src/common/order.js';
import { createPortfolio, portfolioInvariantViolations, portfolioSnapshot } from '../../src/portfolio/portfolio.js';
import { allStateIds, modelPaths, replayPath, statesReached, type ModelPath } from '../../src/testing/modelTesting.js';

type ModelEvent = EventFromLogic<typeof portfolioMachine>;

const fill = (clientOrderId: string, side: 'buy' | 'sell', qty: string, price: string): Fill => ({
  clientOrderId,
  symbol: 'X',
  side,
  qty,
  price,
  commission: '0.50',
  filledAt: 1_735_830_000_000,
});

const BUY_BATCH = [fill('b1', 'buy', '10', '100.00'), fill('b2', 'buy', '5', '101.00')];
const SELL_BATCH = [fill('s1', 'sell', '15', '102.00')];
const BAD_BATCH = [fill('x1', 'buy', '1', '100.00'), { ...fill('x2', 'buy', '1', '100.00'), qty: 'one' }];

const events: ModelEvent[] = [
  { type: 'START' },
  { type: 'STOP' },
  { type: 'FILLS', fills: BUY_BATCH },
  { type: 'FILLS', fills: SELL_BATCH },
  { type: 'FILLS', fills: BAD_BATCH },
  { type: 'MARK', prices: { X: 99.5 } },
  { type: 'DEPOSIT', amount: '1000' },
  { type: 'WITHDRAW', amount: '500' },
  { type: 'WITHDRAW', amount: '1000000' },
];

const input = { portfolio: createPortfolio({ initialCash: '10000' }) };

// Identity: the lifecycle state, the position's sign, whether marks and cash movements have
// happened, and which refusals: every kind of event matters somewhere, and the graph stays small.
const paths = modelPaths(portfolioMachine, {
  events,
  input,
  serializeState: (s) => {
    const { portfolio, stats } = s.context;
    const qty = portfolio.positions.get('X')?.qty ?? 0n;
    return JSON.stringify([
      s.value,
      qty > 0n ? 'long' : qty < 0n ? 'short' : 'flat',
      stats.marks > 0,
      portfolio.netDeposits > 0n ? 'in' : portfolio.netDeposits < 0n ? 'out' : 'none',
      stats.fillsRejected > 0,
      stats.cashRefused > 0,
      stats.fillsRefused > 0,
    ]);
  },
});

/** The independent ledger: integer cents and units, applied only while the model says fills apply. */
class CentsLedger {
  cash = 1_000_000;
  units = 0;

  apply(event: ModelEvent, accepting: boolean): void {
    if (!accepting) return;
    if (event.type === 'FILLS') {
      for (const f of event.fills) {
        if (!/^\d+$/.test(f.qty)) continue;
        const signed = (f.side === 'buy' ? 1 : -1) * Number(f.qty);
        this.cash -= signed * Math.round(Number(f.price) * 100) + 50;
        this.units += signed;
      }
    }
    if (event.type === 'DEPOSIT') this.cash += Number(event.amount) * 100;
    if (event.type === 'WITHDRAW' && Number(event.amount) * 100 <= this.cash) this.cash -= Number(event.amount) * 100;
  }
}

async function replay(path: ModelPath<ModelEvent>): Promise<void> {
  const actor = createActor(portfolioMachine, { input, systemId: 'portfolio' });
  const emitted: PortfolioEmitted[] = [];
  actor.on('*', (event: PortfolioEmitted) => emitted.push(event));
  actor.start();
  const ledger = new CentsLedger();
  let frozenAtShutdown: string | undefined;

  await replayPath(path, {
    actor,
    cause: (event) => {
      ledger.apply(event, !actor.getSnapshot().matches('shutdown'));
      actor.send(event);
    },
    checkInvariants: () => {
      const { portfolio } = actor.getSnapshot().context;
      expect(portfolioInvariantViolations(portfolio)).toEqual([]);
      expect(formatMoney(portfolio.cash)).toBe((ledger.cash / 100).toFixed(2));
      expect(portfolio.positions.get('X')?.qty ?? 0n).toBe(parseQty(String(ledger.units)));
      // Once shut down, nothing changes the portfolio any more.
      if (actor.getSnapshot().matches('shutdown')) {
        frozenAtShutdown ??= JSON.stringify(portfolioSnapshot(portfolio));
        expect(JSON.stringify(portfolioSnapshot(portfolio))).toBe(frozenAtShutdown);
      }
    },
  });
  const { stats } = actor.getSnapshot().context;
  expect(emitted.filter((e) => e.type === 'FILL_REJECTED')).toHaveLength(stats.fillsRejected);
  expect(emitted.filter((e) => e.type === 'CASH_REFUSED')).toHaveLength(stats.cashRefused);
  actor.send({ type: 'STOP' });
  actor.send({ type: 'STOP' });
  expect(actor.getSnapshot().value).toBe('shutdown');
}

describe('portfolio model', () => {
  it('has the expected number of shortest paths', () => {
    expect(paths).toHaveLength(240);
  });

  it('reaches every state except the transient draining', () => {
    const expected = [...allStateIds(portfolioMachine)].filter((id) => id !== 'draining');
    expect([...statesReached(paths)].sort()).toEqual(expected.sort());
  });

  it.each(paths.map((path) => [label(path), path] as const))('replays %s against the real portfolio', async (_name, path) => {
    await replay(path);
  });
});

/** `START → FILLS(buy) → WITHDRAW(1000000)`: the path with its payloads. */
function label(path: ModelPath<ModelEvent>): string {
  const batchName = new Map<readonly Fill[], string>([
    [BUY_BATCH, 'buy'],
    [SELL_BATCH, 'sell'],
    [BAD_BATCH, 'one bad'],
  ]);
  const describe = (event: ModelEvent): string => {
    if (event.type === 'FILLS') return `FILLS(${batchName.get(event.fills) ?? '?'})`;
    if (event.type === 'DEPOSIT' || event.type === 'WITHDRAW') return `${event.type}(${event.amount})`;
    return event.type;
  };
  return path.steps.map((step) => describe(step.event)).join(' → ') || '(initial state)';
}

describe('portfolio actor', () => {
  it('refuses fills and cash movements after shutdown, out loud', () => {
    const actor = createActor(portfolioMachine, { input }).start();
    const emitted: PortfolioEmitted[] = [];
    actor.on('*', (event: PortfolioEmitted) => emitted.push(event));
    actor.send({ type: 'STOP' });
    actor.send({ type: 'FILLS', fills: BUY_BATCH });
    actor.send({ type: 'DEPOSIT', amount: '5' });
    expect(emitted).toEqual([
      { type: 'FILLS_REFUSED', count: 2 },
      { type: 'CASH_REFUSED', movement: 'DEPOSIT', refusal: { code: 'PORTFOLIO_STOPPED', detail: 'the portfolio is shut down' } },
    ]);
    expect(actor.getSnapshot().context.portfolio).toBe(input.portfolio);
  });

  it('applies a batch in one step: a subscriber never sees half of it', () => {
    const actor = createActor(portfolioMachine, { input }).start();
    const fillCounts: number[] = [];
    actor.subscribe((snapshot) => fillCounts.push(snapshot.context.portfolio.fillCount));
    actor.send({ type: 'FILLS', fills: BUY_BATCH });
    actor.send({ type: 'FILLS', fills: SELL_BATCH });
    expect(fillCounts).toEqual([2, 3]);
  });

  const barOf = (symbol: string, minute: number, close: number) => ({
    symbol,
    ts: 1_735_830_000_000 + minute * 60_000,
    open: close,
    high: close,
    low: close,
    close,
    volume: 100,
  });

  it('answers FILLS with the position of every symbol the fills touched, flat ones as 0', () => {
    const actor = createActor(portfolioMachine, { input }).start();
    const answers: PortfolioEmitted[] = [];
    actor.on('FILLS_APPLIED', (event: PortfolioEmitted) => answers.push(event));
    actor.send({ type: 'FILLS', fills: BUY_BATCH });
    actor.send({ type: 'FILLS', fills: SELL_BATCH });
    expect(answers).toEqual([
      { type: 'FILLS_APPLIED', positions: [['X', '15']] },
      { type: 'FILLS_APPLIED', positions: [['X', '0']] },
    ]);
  });

  it('marks a run of bars one bar at a time and answers with the portfolio at each bar that moved it', () => {
    const actor = createActor(portfolioMachine, { input }).start();
    const answers: Extract<PortfolioEmitted, { type: 'BARS_MARKED' }>[] = [];
    actor.on('BARS_MARKED', (event: Extract<PortfolioEmitted, { type: 'BARS_MARKED' }>) => answers.push(event));
    actor.send({ type: 'FILLS', fills: BUY_BATCH });
    // Y is not held: its bar marks nothing; each X bar is a mark.
    actor.send({ type: 'MARK_BARS', bars: [barOf('Y', 0, 5), barOf('X', 1, 103), barOf('X', 2, 103), barOf('X', 3, 104)] });
    const series = answers[0]?.series ?? [];
    // The fills moved it before the run (the reading at the first bar, Y's), then each X bar.
    expect(series.map((reading) => reading.at - 1_735_830_000_000)).toEqual([0, 60_000, 120_000, 180_000]);
    const last = series.at(-1)?.portfolio;
    expect(last).toBe(actor.getSnapshot().context.portfolio);
    expect(formatMoney(last?.marketValue ?? 0n)).toBe('1560.00');
    // Nothing moved since, and a bar of a symbol not held marks nothing: an empty answer.
    actor.send({ type: 'MARK_BARS', bars: [barOf('Y', 4, 6)] });
    expect(answers[1]?.series).toEqual([]);
  });

  it('reads a move no bar of the run showed at `until`, the time of the check that follows', () => {
    const actor = createActor(portfolioMachine, { input }).start();
    const answers: Extract<PortfolioEmitted, { type: 'BARS_MARKED' }>[] = [];
    actor.on('BARS_MARKED', (event: Extract<PortfolioEmitted, { type: 'BARS_MARKED' }>) => answers.push(event));
    actor.send({ type: 'FILLS', fills: BUY_BATCH });
    actor.send({ type: 'MARK_BARS', bars: [], until: 1_735_830_000_000 });
    expect(answers[0]?.series.map((reading) => reading.at)).toEqual([1_735_830_000_000]);
    expect(answers[0]?.series[0]?.portfolio).toBe(actor.getSnapshot().context.portfolio);
    // Without `until`, an empty run has no time to read it at: nothing.
    actor.send({ type: 'FILLS', fills: SELL_BATCH });
    actor.send({ type: 'MARK_BARS', bars: [] });
    expect(answers[1]?.series).toEqual([]);
  });

  it('answers MARK_BARS after shutdown with no reading and marks nothing', () => {
    const actor = createActor(portfolioMachine, { input }).start();
    const answers: Extract<PortfolioEmitted, { type: 'BARS_MARKED' }>[] = [];
    actor.on('BARS_MARKED', (event: Extract<PortfolioEmitted, { type: 'BARS_MARKED' }>) => answers.push(event));
    actor.send({ type: 'FILLS', fills: BUY_BATCH });
    actor.send({ type: 'STOP' });
    const before = actor.getSnapshot().context.portfolio;
    actor.send({ type: 'MARK_BARS', bars: [barOf('X', 1, 200)] });
    expect(answers).toEqual([{ type: 'BARS_MARKED', series: [] }]);
    expect(actor.getSnapshot().context.portfolio).toBe(before);
  });
});
