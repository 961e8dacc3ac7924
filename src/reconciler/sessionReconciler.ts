import type { Reconciliation, SessionStart } from '../../machines/session.machine.js';
import { parseClientOrderId } from '../idempotency/clientOrderId.js';
import { describeError } from '../common/errors.js';
import { parseQty, type Qty } from '../common/money.js';
import type { Portfolio } from '../portfolio/portfolio.js';
import {
  adoptionFills,
  netFills,
  positionDifferences,
  reconcileReport,
  splitOwnFills,
  type OwnOrder,
  type ReconcilePolicy,
  type ReconcileReport,
} from './reconcile.js';
import { addHaltReason } from '../risk/risk.js';
import { applyNewFills, unappliedFills } from '../session/sessionPipeline.js';
import type { Broker } from '../broker/broker.js';
import type { Clock } from '../common/clock.js';
import type { FillCounts } from '../session/fillCounts.js';

/**
 * The session's reconciler (AIStock's PositionReconciler): the broker's positions against the
 * portfolio's, at start, on schedule and at stop. Its rules are plain functions in
 * `src/reconciler/reconcile.ts`; this module asks the broker and keeps the reports and counts.
 *
 * The broker is the source of truth for what was sent: the session's own orders are the
 * broker's ids that carry its session tag, whatever the journal holds. Their fills are pending
 * while their bar may still be decided again (after `decidedTo`); fills of own orders whose bar
 * is final are applied at start as the session's own (a resting order filled while it was down).
 */

/** Counts over every reconciliation of the session. */
export interface ReconcileCounts {
  checks: number;
  /** Checks that could not ask the broker (logged as `RECONCILIATION_FAILED`). */
  failed: number;
  /** Symbols whose positions differed beyond what the session's own pending orders explain, over all checks. */
  differences: number;
  /** `RECON-` fills booked under the `adopt` policy. */
  adoptedFills: number;
  /** Broker fills of the session's own orders that the checkpoint had not seen, applied at start at their own price. */
  recoveredFills: number;
  /** Client order ids the broker holds that the journal had lost (emptied, deleted, damaged): added back at start. */
  journalRebuilt: number;
}

/** What the reconciler needs: the broker (once open), the session's tag, the policy, a clock and the log. */
export interface SessionReconcilerDeps {
  broker: () => Broker;
  tag: string;
  policy: ReconcilePolicy;
  clock: Clock;
  log: (entry: Record<string, unknown>) => void;
}

/** What the portfolio holds, and up to which bar time per symbol everything is decided. */
export interface ReconcileState {
  portfolio: Portfolio;
  appliedFills: FillCounts;
  decidedTo: ReadonlyMap<string, number>;
}

/** The session's reconciler. */
export interface SessionReconciler {
  /** Every report, in order (the Summary's `reconciliation`). */
  readonly reports: ReconcileReport[];
  readonly counts: ReconcileCounts;
  /** At start: own fills of final bars applied, then the differences and the policy applied to the restored state. */
  atStart(restored: SessionStart, knownIds: readonly string[]): Promise<SessionStart>;
  /** A scheduled check (while running): recorded; throws if the broker cannot answer. */
  scheduled(state: ReconcileState): Promise<ReconcileReport>;
  /** The check at stop: recorded, or logged and counted as failed. */
  atStop(state: ReconcileState): Promise<void>;
  /** What the policy makes of a report: a halt reason (`halt`), or fills booking the broker's positions (`adopt`). */
  outcome(report: ReconcileReport | undefined, lastClose: ReadonlyMap<string, number>): Reconciliation;
}

/** Creates the session's reconciler. */
export function createSessionReconciler(deps: SessionReconcilerDeps): SessionReconciler {
  const reports: ReconcileReport[] = [];
  const counts: ReconcileCounts = { checks: 0, failed: 0, differences: 0, adoptedFills: 0, recoveredFills: 0, journalRebuilt: 0 };
  // The newest broker fill price per symbol: what an adopted position is booked at without a bar.
  const brokerPrices = new Map<string, number>();

  /** What the broker holds: its positions, and the session's own orders with their fills. */
  const readBroker = async (knownIds?: readonly string[]): Promise<{ positions: Map<string, Qty>; own: OwnOrder[] }> => {
    const broker = deps.broker();
    const positions = new Map(Object.entries(await broker.positions()).map(([symbol, qty]) => [symbol, parseQty(qty)]));
    const own: OwnOrder[] = [];
    for (const id of knownIds ?? (await broker.knownClientOrderIds())) {
      const state = await broker.orderByClientId(id);
      if (state === undefined) continue;
      for (const fill of state.fills) brokerPrices.set(fill.symbol, Number(fill.price));
      const parts = parseClientOrderId(id);
      if (parts?.tag === deps.tag) own.push({ clientOrderId: id, symbol: state.order.symbol, barTs: parts.barTime, fills: state.fills });
    }
    return { positions, own };
  };

  /**
   * Broker vs portfolio positions. Fills of own orders whose bar lies after `decidedTo` are
   * pending (deciding that bar again applies them), and so are those of `settling` orders;
   * anything else is a difference.
   */
  const positionReport = (
    at: ReconcileReport['at'],
    view: { positions: Map<string, Qty>; own: readonly OwnOrder[] },
    state: ReconcileState,
    settling: ReadonlySet<string> = new Set(),
  ): ReconcileReport => {
    const split = splitOwnFills(view.own, state.appliedFills, state.decidedTo);
    const pending = [...split.pending, ...split.final.filter((fill) => settling.has(fill.clientOrderId))];
    const local = new Map([...state.portfolio.positions].map(([symbol, position]) => [symbol, position.qty]));
    return reconcileReport(at, positionDifferences(local, view.positions, netFills(pending)), deps.policy);
  };

  /** Counts and logs a report: every difference is visible in the summary and the log. */
  const record = (report: ReconcileReport): ReconcileReport => {
    reports.push(report);
    counts.checks += 1;
    counts.differences += report.differences.length;
    if (report.differences.length > 0) deps.log({ event: 'RECONCILIATION_DIFFERENCES', ...report });
    return report;
  };

  const attempt = async (at: ReconcileReport['at'], run: () => Promise<ReconcileReport>): Promise<ReconcileReport | undefined> => {
    try {
      return record(await run());
    } catch (error) {
      counts.failed += 1;
      deps.log({ event: 'RECONCILIATION_FAILED', at, error: describeError(error) });
      return undefined;
    }
  };

  const outcome = (report: ReconcileReport | undefined, lastClose: ReadonlyMap<string, number>): Reconciliation => {
    if (report === undefined || report.differences.length === 0) return { halt: null, adoptionFills: [] };
    const at = deps.clock.wallMs();
    if (report.halt) {
      const detail = report.differences.map((d) => `${d.symbol} local ${d.local} broker ${d.broker}`).join('; ');
      return { halt: { code: 'RECONCILIATION_MISMATCH', detail, at }, adoptionFills: [] };
    }
    if (deps.policy.policy !== 'adopt') return { halt: null, adoptionFills: [] };
    const priceOf = (symbol: string) => lastClose.get(symbol) ?? brokerPrices.get(symbol);
    const fills = adoptionFills(report.differences, priceOf, at);
    counts.adoptedFills += fills.length;
    return { halt: null, adoptionFills: fills };
  };

  return {
    reports,
    counts,
    atStart: async (restored, knownIds) => {
      let state = restored;
      const report = await attempt('start', async () => {
        const view = await readBroker(knownIds);
        const decidedTo = state.pipeline.resumeAfter;
        // Orders settled at start have their fills applied with the settled outcome, not here.
        const settling = new Set(state.settled.map((settled) => settled.order.clientOrderId));
        const final = splitOwnFills(view.own, state.appliedFills, decidedTo).final.filter((fill) => !settling.has(fill.clientOrderId));
        const { fresh, appliedFills } = unappliedFills(final, state.appliedFills);
        if (fresh.length > 0) {
          const recovered = applyNewFills({ ...state, appliedFills }, fresh);
          state = { ...state, pipeline: recovered.pipeline, portfolio: recovered.portfolio, appliedFills };
          counts.recoveredFills += fresh.length;
          deps.log({ event: 'OWN_FILLS_RECOVERED', fills: fresh.length, clientOrderIds: [...new Set(fresh.map((f) => f.clientOrderId))] });
        }
        return positionReport('start', view, { portfolio: state.portfolio, appliedFills: state.appliedFills, decidedTo }, settling);
      });
      const decision = outcome(report, state.pipeline.lastClose);
      if (decision.halt !== null) return { ...state, risk: addHaltReason(state.risk, decision.halt) };
      if (decision.adoptionFills.length === 0) return state;
      const adopted = applyNewFills(state, decision.adoptionFills);
      return { ...state, pipeline: adopted.pipeline, portfolio: adopted.portfolio };
    },
    scheduled: async (state) => record(positionReport('scheduled', await readBroker(), state)),
    atStop: async (state) => {
      await attempt('stop', async () => positionReport('stop', await readBroker(), state));
    },
    outcome,
  };
}
