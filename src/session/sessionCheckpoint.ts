import { z } from 'zod';
import { PortfolioSnapshotSchema, portfolioSnapshot, restorePortfolio } from '../portfolio/portfolio.js';
import { accountView, restoreRiskState, RiskSnapshotSchema, riskSnapshot } from '../risk/risk.js';
import type { RiskRules } from '../risk/riskLimits.js';
import {
  PipelineSnapshotSchema,
  PlannedOrderSchema,
  pipelineSnapshot,
  restorePipeline,
  type SessionState,
} from './sessionPipeline.js';
import type { Strategy } from '../strategy/strategy.js';
import { keyed, keyedRecord } from '../common/keyed.js';
import { FillCountsSchema } from './fillCounts.js';

/**
 * The session's checkpoint: domain state under our own schema (not an XState persisted
 * snapshot, whose timers and inline actors do not survive a restore). `checkpoint.json` in
 * the state dir holds it, written by the checkpointer.
 */
export const SessionCheckpointSchema = z.object({
  sessionId: z.string(),
  strategyId: z.string(),
  pipeline: PipelineSnapshotSchema,
  portfolio: PortfolioSnapshotSchema,
  risk: RiskSnapshotSchema,
  /** How many of each order's broker fills the portfolio holds. */
  appliedFills: FillCountsSchema,
  /** Orders whose submit ended `unknown`, to settle with the broker at the next start. */
  unsettled: keyedRecord(PlannedOrderSchema),
});
/** The session's checkpoint (see {@link SessionCheckpointSchema}). */
export type SessionCheckpoint = z.infer<typeof SessionCheckpointSchema>;

/** The checkpointer key: the file is `checkpoint.json`. */
export const CHECKPOINT_KEY = 'checkpoint';

export type { SessionState } from './sessionPipeline.js';

/** The checkpoint of the session's current state. */
export function sessionCheckpoint(
  state: SessionState,
  ids: { sessionId: string; strategyId: string },
  nowMono: number,
): SessionCheckpoint {
  return {
    ...ids,
    pipeline: pipelineSnapshot(state.pipeline),
    portfolio: portfolioSnapshot(state.portfolio),
    risk: riskSnapshot(state.risk, nowMono),
    appliedFills: state.appliedFills,
    unsettled: state.unsettled,
  };
}

/** The session's state as a checkpoint left it. */
export function restoreSession(
  checkpoint: SessionCheckpoint,
  deps: { strategy: Strategy; rules: RiskRules },
  nowMono: number,
): SessionState {
  const portfolio = restorePortfolio(checkpoint.portfolio);
  return {
    pipeline: restorePipeline(checkpoint.pipeline, deps.strategy),
    portfolio,
    risk: restoreRiskState(checkpoint.risk, deps.rules, nowMono, accountView(portfolio)),
    appliedFills: checkpoint.appliedFills,
    unsettled: keyed(checkpoint.unsettled),
  };
}
