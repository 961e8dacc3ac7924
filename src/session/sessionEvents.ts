import type { AnyActorRef, Subscription } from 'xstate';
import type { DataGuardEmitted } from '../../machines/dataGuard.machine.js';
import type { PortfolioEmitted } from '../../machines/portfolio.machine.js';
import type { RiskEmitted } from '../../machines/risk.machine.js';
import type { SessionEmitted, SessionFault } from '../../machines/session.machine.js';
import type { GuardReason } from '../dataGuard/dataGuard.js';
import { describeError } from '../common/errors.js';
import { formatMoney } from '../common/money.js';
import type { Fill, Side } from '../common/order.js';
import { valuation } from '../portfolio/portfolio.js';
import type { DenyReason, Reason, TradingState } from '../risk/risk.js';
import type { OrderOutcome } from './sessionPipeline.js';

/**
 * What a running session reports, for a user who watches it without reading its machines
 * (`session.on(type, listener)`). Each event is a fact the session's actors already emit,
 * renamed for the public API: the machines stay the one source.
 */
export type SessionEvent =
  /** An order's outcome: sent, a duplicate of one sent before, rejected by the broker, unknown (no answer), settled later, or refused before it was sent. */
  | {
      type: 'order';
      outcome: OrderOutcome['kind'];
      clientOrderId: string;
      symbol: string;
      side: Side;
      qty: string;
      barTs: number;
      /** Why it was rejected, refused or is unknown; null for the others. */
      reason: { code: string; detail: string } | null;
    }
  /** A fill booked into the portfolio (own orders', late partial fills, adopted positions). */
  | { type: 'fill'; fill: Fill }
  /** An intent risk denied, with every reason. */
  | { type: 'denied'; clientOrderId: string; symbol: string; side: Side; qty: string; barTs: number; reasons: readonly DenyReason[] }
  /** A bar the data guard rejected. */
  | { type: 'barRejected'; symbol: string; ts: number; reason: GuardReason; detail: string }
  /** Risk's trading state changed. */
  | { type: 'riskState'; state: TradingState; haltReasons: readonly Reason[]; reduceReason: Reason | null }
  /** The account as it stood at a bar's time, each time marks or fills moved it (decimal strings). */
  | { type: 'equity'; at: number; equity: string; cash: string; grossExposure: string }
  /** A checkpoint write ended: totals so far. */
  | { type: 'checkpoint'; result: 'written' | 'failed'; written: number; failed: number }
  /** The session faulted (reported once). */
  | { type: 'fault'; fault: SessionFault };

/** The name of a session event. */
export type SessionEventType = SessionEvent['type'];

/** The session event named `T`. */
export type SessionEventOf<T extends SessionEventType> = Extract<SessionEvent, { type: T }>;

/** Subscribes `listener` to events named `type`; returns the unsubscribe. */
export type SessionOn = <T extends SessionEventType>(type: T, listener: (event: SessionEventOf<T>) => void) => () => void;

/** Subscribe, emit, and whether anyone listens to a type (so an event costly to build is built only then). */
export interface SessionEmitter {
  on: SessionOn;
  emit(event: SessionEvent): void;
  wants(type: SessionEventType): boolean;
  /** Listener calls that threw, so far. */
  failures(): number;
}

/**
 * Listeners by event type. A listener that throws is the user's bug, not the session's: it is
 * logged (`LISTENER_FAILED`, with the event type and error), counted (`Summary.listenerFailures`),
 * and the other listeners still run.
 */
export function createSessionEvents(log: (entry: Record<string, unknown>) => void): SessionEmitter {
  const listeners = new Map<SessionEventType, Set<(event: SessionEvent) => void>>();
  let failed = 0;
  const on: SessionOn = (type, listener) => {
    const set = listeners.get(type) ?? new Set();
    listeners.set(type, set);
    const untyped = listener as (event: SessionEvent) => void;
    set.add(untyped);
    return () => set.delete(untyped);
  };
  const emit = (event: SessionEvent): void => {
    for (const listener of listeners.get(event.type) ?? []) {
      try {
        listener(event);
      } catch (error) {
        failed += 1;
        log({ event: 'LISTENER_FAILED', type: event.type, error: describeError(error) });
      }
    }
  };
  return { on, emit, wants: (type) => (listeners.get(type)?.size ?? 0) > 0, failures: () => failed };
}

/** The session's own facts as public events. */
function fromSession(event: SessionEmitted): SessionEvent[] {
  switch (event.type) {
    case 'ORDER_OUTCOMES':
      return event.outcomes.map((outcome) => ({
        type: 'order',
        outcome: outcome.kind,
        clientOrderId: outcome.order.clientOrderId,
        symbol: outcome.order.intent.symbol,
        side: outcome.order.intent.side,
        qty: outcome.order.intent.qty,
        barTs: outcome.order.barTs,
        reason: 'reason' in outcome ? { code: outcome.reason.code, detail: outcome.reason.detail } : null,
      }));
    case 'ORDERS_DENIED':
      return event.denied.map(({ clientOrderId, intent, reasons }) => ({
        type: 'denied',
        clientOrderId,
        symbol: intent.symbol,
        side: intent.side,
        qty: intent.qty,
        barTs: event.barTs,
        reasons,
      }));
    case 'FILLS_BOOKED':
      return event.fills.map((fill) => ({ type: 'fill', fill }));
  }
}

/** The session's actors, as the runtime knows them once they exist. */
export interface ObservedActors {
  session: AnyActorRef;
  /** The checkpointer's actor, once the start has made it. */
  checkpointer: () => AnyActorRef | undefined;
}

/**
 * Wires the actors' emitted events and snapshots to `emit`: the session's own at once, its
 * children's as soon as they are spawned (before any bar reaches them), the checkpointer's once
 * the start has made it. Returns what stops it.
 */
export function observeSession(actors: ObservedActors, { emit, wants }: Pick<SessionEmitter, 'emit' | 'wants'>): () => void {
  const subscriptions: Subscription[] = [];
  for (const type of ['ORDER_OUTCOMES', 'ORDERS_DENIED', 'FILLS_BOOKED'] as const) {
    subscriptions.push(actors.session.on(type, (event: SessionEmitted) => fromSession(event).forEach(emit)));
  }
  let childrenSeen = false;
  let checkpointerSeen = false;
  let faultReported = false;
  const watchChildren = (): void => {
    const guard = actors.session.system.get('dataGuard') as AnyActorRef | undefined;
    const risk = actors.session.system.get('risk') as AnyActorRef | undefined;
    const portfolio = actors.session.system.get('portfolio') as AnyActorRef | undefined;
    if (guard === undefined || risk === undefined || portfolio === undefined) return;
    childrenSeen = true;
    subscriptions.push(
      guard.on('BARS_SCREENED', (event: Extract<DataGuardEmitted, { type: 'BARS_SCREENED' }>) => {
        for (const finding of event.findings) {
          if (finding.action === 'block') emit({ type: 'barRejected', symbol: finding.symbol, ts: finding.ts, reason: finding.reason, detail: finding.detail });
        }
      }),
      portfolio.on('BARS_MARKED', (event: Extract<PortfolioEmitted, { type: 'BARS_MARKED' }>) => {
        if (!wants('equity')) return;
        for (const { at, portfolio: reading } of event.series) {
          const { equity, cash, grossExposure } = valuation(reading);
          emit({ type: 'equity', at, equity: formatMoney(equity), cash: formatMoney(cash), grossExposure: formatMoney(grossExposure) });
        }
      }),
      risk.on('TRADING_STATE_CHANGED', (event: Extract<RiskEmitted, { type: 'TRADING_STATE_CHANGED' }>) =>
        emit({ type: 'riskState', state: event.tradingState, haltReasons: event.haltReasons, reduceReason: event.reduceReason }),
      ),
    );
  };
  const watchCheckpointer = (): void => {
    const checkpointer = actors.checkpointer();
    if (checkpointer === undefined) return;
    checkpointerSeen = true;
    let seen = { written: 0, failed: 0 };
    subscriptions.push(
      checkpointer.subscribe((snapshot: { context: { stats: { written: number; failed: number } } }) => {
        const { written, failed } = snapshot.context.stats;
        if (written === seen.written && failed === seen.failed) return;
        const result = written > seen.written ? 'written' : 'failed';
        seen = { written, failed };
        emit({ type: 'checkpoint', result, written, failed });
      }),
    );
  };
  subscriptions.push(
    actors.session.subscribe((snapshot: { context: { fault: SessionFault | null } }) => {
      if (!childrenSeen) watchChildren();
      if (!checkpointerSeen) watchCheckpointer();
      if (!faultReported && snapshot.context.fault !== null) {
        faultReported = true;
        emit({ type: 'fault', fault: snapshot.context.fault });
      }
    }),
  );
  return () => subscriptions.forEach((subscription) => subscription.unsubscribe());
}
