import { enqueueActions, setup, type AnyActorRef } from 'xstate';
import type { Bar } from '../src/bars/bar.js';
import { parsePrice } from '../src/common/money.js';
import type { Fill } from '../src/common/order.js';
import type { PortfolioAt } from '../src/risk/risk.js';
import {
  applyFills,
  deposit,
  markToMarket,
  parseCashAmount,
  parseMarkPrices,
  positionsTouched,
  withdraw,
  type CashRefusal,
  type FillRejection,
  type MarkRejection,
  type Portfolio,
} from '../src/portfolio/portfolio.js';
import { LIFECYCLE, lifecycleStates, type LifecycleEvent } from './lifecycle.js';

/**
 * The portfolio (AIStock's Portfolio): the one writer of cash, positions and P&L. Create it
 * with `systemId: 'portfolio'`.
 *
 * - `FILLS` carries a batch (one event, many fills): one `assign` applies them all, so a
 *   reader never sees half a batch. A fill that does not parse is rejected (`FILL_REJECTED`)
 *   and the rest of the batch still applies.
 * - `MARK` sets last prices (equity, unrealised P&L and exposure follow); `DEPOSIT` and
 *   `WITHDRAW` move cash (`CASH_REFUSED` for a bad amount or too little cash).
 * - Readers take `actor.getSnapshot().context.portfolio`: an immutable value, internally
 *   consistent, that later events never change (no lock, no torn read).
 * - Fills are applied from `idle` through `draining`: a fill is a fact and is never dropped
 *   while the component lives. In `shutdown` they are refused (`FILLS_REFUSED`), not lost
 *   silently (the broker ledger still holds them for reconciliation); cash movements are
 *   refused (`PORTFOLIO_STOPPED`) and marks ignored, so the final valuation stays put.
 *
 * How a session drives it (its `reportTo` receives the answers):
 * - `MARK_BARS` takes a run of bars in time order and marks each held symbol to its bar's
 *   close, one bar at a time; it answers `BARS_MARKED` with the portfolio as it stood at every
 *   bar that changed it since the last answer (`series`, for the risk engine), so a run costs one
 *   event and still reads as bar-by-bar marks. With `until` (an order check follows at that time),
 *   a change no bar of the run showed — fills that came between two runs — is read at `until`,
 *   so the check sees the account as it is.
 * - `FILLS` answers `FILLS_APPLIED`: the position of every symbol the fills touched, as a
 *   decimal string ('0' when flat), which is what a strategy is shown.
 */

/** What the portfolio accepts: lifecycle, fill batches, marks and cash movements. */
export type PortfolioEvent =
  | LifecycleEvent
  | { type: 'FILLS'; fills: readonly Fill[] }
  | { type: 'MARK'; prices: Readonly<Record<string, number | string>> }
  /** `until`: the time the run ends (a check follows there); a move no bar showed is read then. */
  | { type: 'MARK_BARS'; bars: readonly Bar[]; until?: number }
  | { type: 'DEPOSIT'; amount: string | number }
  | { type: 'WITHDRAW'; amount: string | number };

/** What the portfolio tells observers (`actor.on(type, …)`). */
export type PortfolioEmitted =
  | { type: 'FILL_REJECTED'; rejection: FillRejection }
  | { type: 'MARK_REJECTED'; rejection: MarkRejection }
  | { type: 'CASH_REFUSED'; movement: 'DEPOSIT' | 'WITHDRAW'; refusal: CashRefusal }
  | { type: 'FILLS_REFUSED'; count: number }
  | { type: 'BARS_MARKED'; series: PortfolioAt[] }
  | { type: 'FILLS_APPLIED'; positions: [symbol: string, qty: string][] };

/** Counters for the Summary and for tests. */
export interface PortfolioStats {
  fillBatches: number;
  fillsApplied: number;
  fillsRejected: number;
  marks: number;
  cashRefused: number;
  /** Fills that arrived after shutdown. */
  fillsRefused: number;
}

/** The portfolio's context: the immutable portfolio readers take, and counters. */
export interface PortfolioContext {
  portfolio: Portfolio;
  stats: PortfolioStats;
  /** The portfolio as the last `BARS_MARKED` (or the input) showed it. */
  reported: Portfolio;
  reportTo: AnyActorRef | null;
}

/** The starting portfolio (`createPortfolio(...)` or `restorePortfolio(checkpoint)`) and who else receives the answers. */
export interface PortfolioInput {
  portfolio: Portfolio;
  reportTo?: AnyActorRef;
}

const portfolioSetup = setup({
  types: {
    context: {} as PortfolioContext,
    events: {} as PortfolioEvent,
    input: {} as PortfolioInput,
    emitted: {} as PortfolioEmitted,
  },
  actions: {
    applyFillBatch: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'FILLS') return;
      const { portfolio, rejected } = applyFills(context.portfolio, event.fills);
      const { stats } = context;
      enqueue.assign({
        portfolio,
        stats: {
          ...stats,
          fillBatches: stats.fillBatches + 1,
          fillsApplied: stats.fillsApplied + event.fills.length - rejected.length,
          fillsRejected: stats.fillsRejected + rejected.length,
        },
      });
      for (const rejection of rejected) enqueue.emit({ type: 'FILL_REJECTED', rejection });
      const applied = { type: 'FILLS_APPLIED' as const, positions: positionsTouched(portfolio, event.fills) };
      enqueue.emit(applied);
      if (context.reportTo !== null) enqueue.sendTo(context.reportTo, applied);
    }),
    markBars: enqueueActions(({ context, event, enqueue }, params: { mark: boolean }) => {
      if (event.type !== 'MARK_BARS') return;
      let { portfolio, reported } = context;
      const series: PortfolioAt[] = [];
      for (const bar of params.mark ? event.bars : []) {
        if (portfolio.positions.has(bar.symbol)) portfolio = markToMarket(portfolio, [[bar.symbol, parsePrice(bar.close)]]);
        if (portfolio !== reported) series.push({ at: bar.ts, portfolio });
        reported = portfolio;
      }
      if (params.mark && event.until !== undefined && portfolio !== reported) {
        series.push({ at: event.until, portfolio });
        reported = portfolio;
      }
      if (portfolio !== context.portfolio || reported !== context.reported) {
        enqueue.assign({ portfolio, reported, stats: { ...context.stats, marks: context.stats.marks + series.length } });
      }
      const marked = { type: 'BARS_MARKED' as const, series };
      enqueue.emit(marked);
      if (context.reportTo !== null) enqueue.sendTo(context.reportTo, marked);
    }),
    markPrices: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'MARK') return;
      const { prices, rejected } = parseMarkPrices(event.prices);
      enqueue.assign({
        portfolio: markToMarket(context.portfolio, prices),
        stats: { ...context.stats, marks: context.stats.marks + 1 },
      });
      for (const rejection of rejected) enqueue.emit({ type: 'MARK_REJECTED', rejection });
    }),
    moveCash: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'DEPOSIT' && event.type !== 'WITHDRAW') return;
      const amount = parseCashAmount(event.amount);
      const result =
        typeof amount !== 'bigint'
          ? ({ outcome: 'refused', refusal: amount } as const)
          : event.type === 'DEPOSIT'
            ? deposit(context.portfolio, amount)
            : withdraw(context.portfolio, amount);
      if (result.outcome === 'applied') {
        enqueue.assign({ portfolio: result.portfolio });
        return;
      }
      enqueue.assign({ stats: { ...context.stats, cashRefused: context.stats.cashRefused + 1 } });
      enqueue.emit({ type: 'CASH_REFUSED', movement: event.type, refusal: result.refusal });
    }),
    refuseCashMovement: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'DEPOSIT' && event.type !== 'WITHDRAW') return;
      enqueue.assign({ stats: { ...context.stats, cashRefused: context.stats.cashRefused + 1 } });
      const refusal = { code: 'PORTFOLIO_STOPPED', detail: 'the portfolio is shut down' } as const;
      enqueue.emit({ type: 'CASH_REFUSED', movement: event.type, refusal });
    }),
    refuseFills: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'FILLS') return;
      enqueue.assign({ stats: { ...context.stats, fillsRefused: context.stats.fillsRefused + event.fills.length } });
      enqueue.emit({ type: 'FILLS_REFUSED', count: event.fills.length });
    }),
  },
});

/** The portfolio machine (`id`/`systemId` `portfolio`); see the comment at the top of this file. */
export const portfolioMachine = portfolioSetup.createMachine({
  id: 'portfolio',
  context: ({ input }) => ({
    portfolio: input.portfolio,
    stats: { fillBatches: 0, fillsApplied: 0, fillsRejected: 0, marks: 0, cashRefused: 0, fillsRefused: 0 },
    reported: input.portfolio,
    reportTo: input.reportTo ?? null,
  }),
  initial: LIFECYCLE.idle,
  // Accepted until shutdown (which overrides FILLS): the portfolio is a ledger of facts.
  on: {
    FILLS: { actions: 'applyFillBatch' },
    MARK: { actions: 'markPrices' },
    MARK_BARS: { actions: { type: 'markBars', params: { mark: true } } },
    DEPOSIT: { actions: 'moveCash' },
    WITHDRAW: { actions: 'moveCash' },
  },
  states: lifecycleStates({
    running: {},
    draining: {
      description: 'nothing to flush: the portfolio lives in memory and the checkpointer persists it',
      always: { target: LIFECYCLE.shutdown },
    },
    shutdown: {
      on: {
        FILLS: { actions: 'refuseFills' },
        DEPOSIT: { actions: 'refuseCashMovement' },
        WITHDRAW: { actions: 'refuseCashMovement' },
        MARK: { description: 'shut down: the final valuation stays as it was' },
        MARK_BARS: { description: 'shut down: nothing is marked; answered with no change', actions: { type: 'markBars', params: { mark: false } } },
      },
    },
  }),
});
