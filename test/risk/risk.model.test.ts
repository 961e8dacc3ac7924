import { DateTime } from 'luxon';
import { createActor, type EventFromLogic } from 'xstate';
import { describe, expect, it } from 'vitest';
import { riskMachine, type RiskEmitted } from '../../machines/risk.machine.js';
import { parsePrice } from '../../src/common/money.js';
import { applyFills, createPortfolio, markToMarket, type Portfolio } from '../../src/portfolio/portfolio.js';
import {
  accountView,
  createRiskState,
  readClock,
  startTradingDayIfDue,
  tradingState,
  updateAccount,
  type AccountView,
  type ClockReading,
  type OrderVerdict,
} from '../../src/risk/risk.js';
import { compileRiskRules, parseRiskLimits } from '../../src/risk/riskLimits.js';
import { ManualClock } from '../../src/common/clock.js';
import { allStateIds, modelPaths, replayPath, statesReached, type ModelPath } from '../../src/testing/modelTesting.js';

type ModelEvent = EventFromLogic<typeof riskMachine>;

// Only the loss limits bite: the model is about trading states; the others have unit tests.
const limits = parseRiskLimits({
  rateLimitEnabled: false,
  perTradeRiskPct: 1,
  maxPositionFraction: 1,
  maxSinglePositionUnits: 1e6,
  perSymbolNotionalCap: 1e9,
});
const DAY_1 = DateTime.fromISO('2025-01-02T12:00', { zone: 'America/New_York' }).toMillis();
const DAY_2 = DAY_1 + 86_400_000;

// The account: 1,000 X bought at 100 with all the cash, so equity moves 1:1 with X's price.
const holding = applyFills(createPortfolio({ initialCash: '100000' }), [
  { clientOrderId: 'seed', symbol: 'X', side: 'buy', qty: '1000', price: '100', commission: '0', filledAt: 0 },
]).portfolio;
const EQUITY_PRICES = { healthy: '100', dailyLoss: '94', drawdown: '84' } as const;
type Equity = keyof typeof EQUITY_PRICES;

function markedAt(equity: Equity): Portfolio {
  return markToMarket(holding, [['X', parsePrice(EQUITY_PRICES[equity])]]);
}

/** The account a model event carries, labelled so the graph can serialise the event. */
function labelledAccount(equity: Equity): AccountView {
  return Object.defineProperty({ ...accountView(markedAt(equity)) }, 'toJSON', { value: () => equity });
}

const at = (wallMs: number): ClockReading => ({ wallMs, monoMs: 0 });

// Both the model and the real engine start from the same data: day 1, the healthy account.
const rules = compileRiskRules(limits);
const initialState = startTradingDayIfDue(updateAccount(createRiskState(), rules, accountView(markedAt('healthy'))).state, rules, DAY_1).state;
const input = { limits, state: initialState };
const accountUpdate = (equity: Equity, day: 1 | 2) =>
  ({ type: 'ACCOUNT_UPDATED', account: labelledAccount(equity), at: at(day === 1 ? DAY_1 : DAY_2) }) as const;

/** A run of bars as a session settles it: the portfolio at each reading, labelled for the graph. */
const settle = (...readings: [Equity, 1 | 2][]): ModelEvent => {
  const series = readings.map(([equity, day]) => ({ at: day === 1 ? DAY_1 : DAY_2, portfolio: markedAt(equity) }));
  return Object.defineProperty({ type: 'SETTLE' as const, series, check: null }, 'toJSON', {
    value: () => ({ type: 'SETTLE', readings }),
  });
};

const HALT: ModelEvent = { type: 'HALT', reason: { code: 'MANUAL', detail: 'operator' }, at: at(DAY_1) };
const REDUCE: ModelEvent = { type: 'REDUCE', reason: { code: 'OPERATOR', detail: 'wind down' }, at: at(DAY_1) };

const events: ModelEvent[] = [
  { type: 'START' },
  { type: 'STOP' },
  HALT,
  REDUCE,
  { type: 'RESUME' },
  accountUpdate('healthy', 1),
  accountUpdate('dailyLoss', 1),
  accountUpdate('drawdown', 1),
  accountUpdate('healthy', 2),
  accountUpdate('dailyLoss', 2),
];

/** The path a session would drive: each account update as a one-reading `SETTLE` (same states expected). */
function asSettles(path: ModelPath<ModelEvent>): ModelPath<ModelEvent> {
  const steps = path.steps.map((step) => {
    const { event } = step;
    if (event.type !== 'ACCOUNT_UPDATED') return step;
    const equity = (event.account as unknown as { toJSON(): Equity }).toJSON();
    return { ...step, event: settle([equity, event.at.wallMs === DAY_1 ? 1 : 2]) };
  });
  return { ...path, steps };
}

// Identity: the state, the reasons held, the day and the breaches the account shows.
const paths = modelPaths(riskMachine, {
  events,
  input,
  serializeState: (s) =>
    JSON.stringify([
      s.value,
      s.context.risk.haltReasons.map((r) => r.code).sort(),
      s.context.risk.reduceReason !== null,
      s.context.risk.tradingDay?.date ?? null,
      s.context.risk.breaches,
    ]),
  // Past shutdown only counters move; every replay ends with STOP twice instead.
  stopWhen: (s) => s.matches('shutdown'),
});

/** The real engine, fed by a real portfolio and a manual clock; answers are collected by checkId. */
function liveEngine() {
  const actor = createActor(riskMachine, { input, systemId: 'risk' });
  const answers = new Map<string, OrderVerdict[]>();
  actor.on('ORDERS_CHECKED', (event: Extract<RiskEmitted, { type: 'ORDERS_CHECKED' }>) => answers.set(event.checkId, event.verdicts));
  actor.start();
  const clock = new ManualClock({ wallMs: DAY_1, monoMs: 0 });
  let checks = 0;

  /** Moves the wall clock to `wallMs`: forward as time passing, backward as an NTP jump. */
  const clockTo = (wallMs: number): void => {
    const delta = wallMs - clock.wallMs();
    if (delta >= 0) clock.advance(delta);
    else clock.jumpWall(delta);
  };

  const ask = (side: 'buy' | 'sell', qty: string): OrderVerdict => {
    checks += 1;
    const checkId = `check-${checks}`;
    actor.send({ type: 'CHECK_ORDERS', checkId, orders: [{ orderId: checkId, intent: { symbol: 'X', side, qty, type: 'market' }, price: 50 }], at: readClock(clock) });
    actor.send({ type: 'ORDER_RELEASED', orderId: checkId });
    const verdicts = answers.get(checkId);
    if (verdicts?.[0] === undefined) throw new Error(`no answer to ${checkId}`);
    return verdicts[0];
  };

  const cause = (event: ModelEvent): void => {
    if (event.type === 'ACCOUNT_UPDATED') {
      clockTo(event.at.wallMs);
      const equity = (event.account as unknown as { toJSON(): Equity }).toJSON();
      actor.send({ type: 'ACCOUNT_UPDATED', account: accountView(markedAt(equity)), at: readClock(clock) });
      return;
    }
    if (event.type === 'SETTLE') {
      const last = event.series.at(-1);
      if (last !== undefined) clockTo(last.at);
      actor.send(event);
      return;
    }
    if (event.type === 'HALT' || event.type === 'REDUCE') {
      actor.send({ ...event, at: readClock(clock) });
      return;
    }
    actor.send(event);
  };

  return { actor, ask, cause };
}

const codesOf = (verdict: OrderVerdict): string[] => (verdict.verdict === 'approve' ? [] : verdict.reasons.map((r) => r.code));

async function replay(path: ModelPath<ModelEvent>): Promise<void> {
  const engine = liveEngine();
  await replayPath(path, {
    actor: engine.actor,
    cause: engine.cause,
    checkInvariants: () => {
      const snapshot = engine.actor.getSnapshot();
      const { risk } = snapshot.context;
      const codes = risk.haltReasons.map((r) => r.code);
      expect(new Set(codes).size, 'a halt reason is never held twice').toBe(codes.length);
      const closeAll = engine.ask('sell', '1000');
      const partial = engine.ask('sell', '10');
      const add = engine.ask('buy', '10');
      if (!snapshot.matches('running')) {
        for (const verdict of [closeAll, partial, add]) expect(codesOf(verdict)).toEqual(['RISK_ENGINE_STOPPED']);
        return;
      }
      // The state the machine shows is the one the data holds, and the orders follow it.
      expect(snapshot.matches({ running: tradingState(risk) })).toBe(true);
      expect(closeAll.verdict).toBe('approve');
      if (snapshot.matches({ running: 'halted' })) {
        expect(codesOf(partial)).toEqual(['TRADING_HALTED']);
        expect(codesOf(add)).toContain('TRADING_HALTED');
      } else {
        expect(partial.verdict).toBe('approve');
        if (snapshot.matches({ running: 'reducing' })) expect(codesOf(add)).toContain('REDUCING_ONLY');
        else expect(codesOf(add).filter((code) => code !== 'KILL_SWITCH')).toEqual([]);
      }
    },
  });
  // Every path, stopped twice, ends in shutdown.
  engine.actor.send({ type: 'STOP' });
  engine.actor.send({ type: 'STOP' });
  expect(engine.actor.getSnapshot().value).toBe('shutdown');
}

describe('risk engine model', () => {
  it('has the expected number of shortest paths', () => {
    expect(paths).toHaveLength(228);
  });

  it('reaches every state except the transient ones', () => {
    const transient = ['draining', 'running.restoring'];
    const expected = [...allStateIds(riskMachine)].filter((id) => !transient.includes(id));
    expect([...statesReached(paths)].sort()).toEqual(expected.sort());
  });

  it.each(paths.map((path) => [label(path), path] as const))('replays %s against the real engine', async (_name, path) => {
    await replay(path);
  });

  // A session settles runs of bars with SETTLE: each path again, every account update as a SETTLE
  // reading, must reach the same states with the same verdicts.
  it.each(paths.filter((path) => path.steps.some((step) => step.event.type === 'ACCOUNT_UPDATED')).map((path) => [label(path), path] as const))(
    'replays %s with SETTLE readings instead, to the same states',
    async (_name, path) => {
      await replay(asSettles(path));
    },
  );
});

/** `START → HALT(MANUAL) → ACCOUNT_UPDATED(dailyLoss, day 2)`: the path with its payloads. */
function label(path: ModelPath<ModelEvent>): string {
  const describe = (event: ModelEvent): string => {
    if (event.type === 'ACCOUNT_UPDATED') return `ACCOUNT_UPDATED(${JSON.stringify(event.account)}, day ${event.at.wallMs === DAY_1 ? 1 : 2})`;
    if (event.type === 'HALT' || event.type === 'REDUCE') return `${event.type}(${event.reason.code})`;
    if (event.type === 'SETTLE') return JSON.stringify(event);
    return event.type;
  };
  return path.steps.map((step) => describe(step.event)).join(' → ') || '(initial state)';
}

describe('risk engine scenarios', () => {
  const halt = HALT;
  const reduce = REDUCE;

  function run(...sequence: ModelEvent[]) {
    const engine = liveEngine();
    const emitted: string[] = [];
    engine.actor.on('*', (event: RiskEmitted) => emitted.push(event.type === 'TRADING_STATE_CHANGED' ? `${event.type}:${event.tradingState}` : event.type));
    for (const event of sequence) engine.cause(event);
    const { value, context } = engine.actor.getSnapshot();
    return { engine, value, risk: context.risk, codes: context.risk.haltReasons.map((r) => r.code), emitted };
  }

  it('HALT twice: the second adds nothing and changes nothing', () => {
    const once = run({ type: 'START' }, halt);
    once.engine.cause(halt);
    const after = once.engine.actor.getSnapshot();
    expect(after.value).toEqual({ running: 'halted' });
    expect(after.context.risk).toBe(once.risk);
    expect(once.emitted.filter((type) => type.startsWith('TRADING_STATE_CHANGED'))).toEqual(['TRADING_STATE_CHANGED:active', 'TRADING_STATE_CHANGED:halted']);
  });

  it('a breach during a halt adds the breach as a reason and stays halted', () => {
    const { value, codes } = run({ type: 'START' }, halt, accountUpdate('dailyLoss', 1));
    expect(value).toEqual({ running: 'halted' });
    expect(codes).toEqual(['MANUAL', 'DAILY_LOSS_LIMIT']);
  });

  it('HALT while reducing halts, keeps the reduce reason, and RESUME clears both', () => {
    const reducing = run({ type: 'START' }, reduce, halt);
    expect(reducing.value).toEqual({ running: 'halted' });
    expect(reducing.risk.reduceReason?.code).toBe('OPERATOR');
    reducing.engine.cause({ type: 'RESUME' });
    const resumed = reducing.engine.actor.getSnapshot();
    expect(resumed.value).toEqual({ running: 'active' });
    expect([resumed.context.risk.haltReasons, resumed.context.risk.reduceReason]).toEqual([[], null]);
  });

  it('the daily reset resumes trading when only the daily loss had halted it', () => {
    const { value, risk, emitted } = run({ type: 'START' }, accountUpdate('dailyLoss', 1), accountUpdate('dailyLoss', 2));
    expect(value).toEqual({ running: 'active' });
    expect(risk.tradingDay?.date).toBe('2025-01-03');
    expect(emitted).toContain('TRADING_DAY_STARTED');
    expect(emitted.filter((type) => type.startsWith('TRADING_STATE_CHANGED'))).toEqual([
      'TRADING_STATE_CHANGED:active',
      'TRADING_STATE_CHANGED:halted',
      'TRADING_STATE_CHANGED:active',
    ]);
  });

  it('the daily reset keeps a drawdown halt, and returns to reducing when a REDUCE was remembered', () => {
    expect(run({ type: 'START' }, accountUpdate('drawdown', 1), accountUpdate('drawdown', 2)).codes).toEqual(['MAX_DRAWDOWN']);
    const remembered = run({ type: 'START' }, accountUpdate('dailyLoss', 1), reduce, accountUpdate('dailyLoss', 2));
    expect(remembered.value).toEqual({ running: 'reducing' });
  });

  it('a RESUME that leaves a breach standing is halted again by the next account update', () => {
    const { engine } = run({ type: 'START' }, accountUpdate('drawdown', 1), { type: 'RESUME' });
    expect(engine.actor.getSnapshot().value).toEqual({ running: 'active' });
    expect(engine.ask('buy', '1').verdict).toBe('deny');
    engine.cause(accountUpdate('drawdown', 1));
    expect(engine.actor.getSnapshot().value).toEqual({ running: 'halted' });
  });

  it('SETTLE takes its readings in order: a daily-loss halt, then the next day resets it, in one event', () => {
    const { value, emitted } = run({ type: 'START' }, settle(['dailyLoss', 1], ['healthy', 2]));
    expect(value).toEqual({ running: 'active' });
    expect(emitted).toEqual(expect.arrayContaining(['LIMIT_BREACHED', 'TRADING_DAY_STARTED', 'SETTLED']));
    const oneByOne = run({ type: 'START' }, accountUpdate('dailyLoss', 1), accountUpdate('healthy', 2));
    expect(run({ type: 'START' }, settle(['dailyLoss', 1], ['healthy', 2])).risk.haltReasons).toEqual(oneByOne.risk.haltReasons);
  });

  it('SETTLE halts on a breach it shows, and its check is then denied; the answer always comes', () => {
    const { engine } = run({ type: 'START' });
    const answers: Extract<RiskEmitted, { type: 'SETTLED' }>[] = [];
    engine.actor.on('SETTLED', (event: Extract<RiskEmitted, { type: 'SETTLED' }>) => answers.push(event));
    const check = { checkId: 'c1', orders: [{ orderId: 'c1', intent: { symbol: 'X', side: 'buy' as const, qty: '1', type: 'market' as const }, price: 50 }], at: at(DAY_1) };
    engine.actor.send({ type: 'SETTLE', series: [{ at: DAY_1, portfolio: markedAt('drawdown') }], check });
    expect(engine.actor.getSnapshot().value).toEqual({ running: 'halted' });
    expect(answers[0]?.checkId).toBe('c1');
    expect(codesOf(answers[0]?.verdicts[0] ?? { verdict: 'approve' })).toContain('TRADING_HALTED');
  });

  it('SETTLE with the kill switch off reports the breach and never halts', () => {
    const off = createActor(riskMachine, { input: { limits: { ...limits, killSwitchEnabled: false }, state: initialState } });
    const breaches: boolean[] = [];
    off.on('LIMIT_BREACHED', (event: Extract<RiskEmitted, { type: 'LIMIT_BREACHED' }>) => breaches.push(event.halts));
    off.start();
    off.send({ type: 'START' });
    off.send({ type: 'SETTLE', series: [{ at: DAY_1, portfolio: markedAt('drawdown') }], check: null });
    expect(off.getSnapshot().value).toEqual({ running: 'active' });
    // Down 16%: past both the daily-loss and the drawdown limit; each reported, neither halts.
    expect(breaches).toEqual([false, false]);
  });

  it('SETTLE outside running takes the readings, denies the check (RISK_ENGINE_STOPPED) and still answers', () => {
    const { engine } = run();
    const answers: Extract<RiskEmitted, { type: 'SETTLED' }>[] = [];
    engine.actor.on('SETTLED', (event: Extract<RiskEmitted, { type: 'SETTLED' }>) => answers.push(event));
    const check = { checkId: 'c2', orders: [{ orderId: 'c2', intent: { symbol: 'X', side: 'sell' as const, qty: '1000', type: 'market' as const }, price: 50 }], at: at(DAY_1) };
    engine.actor.send({ type: 'SETTLE', series: [{ at: DAY_1, portfolio: markedAt('drawdown') }], check });
    expect(engine.actor.getSnapshot().context.risk.breaches).toContain('MAX_DRAWDOWN');
    expect(codesOf(answers[0]?.verdicts[0] ?? { verdict: 'approve' })).toEqual(['RISK_ENGINE_STOPPED']);
  });

  it('a HALT sent before START is kept: START enters halted', () => {
    expect(run(halt, { type: 'START' }).value).toEqual({ running: 'halted' });
  });

  it.each([
    ['idle', []],
    ['active', [{ type: 'START' }]],
    ['reducing', [{ type: 'START' }, reduce]],
    ['halted', [{ type: 'START' }, halt]],
    ['shutdown', [{ type: 'STOP' }]],
  ] as Array<[string, ModelEvent[]]>)('STOP in %s reaches shutdown, and a second STOP changes nothing', (_state, before) => {
    const { engine } = run(...before);
    engine.cause({ type: 'STOP' });
    const stopped = engine.actor.getSnapshot();
    expect(stopped.value).toBe('shutdown');
    engine.cause({ type: 'STOP' });
    expect(engine.actor.getSnapshot()).toBe(stopped);
  });
});
