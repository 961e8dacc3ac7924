/** Every aistock machine, for the inspector, diagrams and model-based tests. */
export { LIFECYCLE, IGNORED_STOP, lifecycleStates, type LifecycleEvent } from './lifecycle.js';
export {
  checkpointerMachine,
  DEFAULT_CHECKPOINTER_CONFIG,
  type CheckpointerConfig,
  type CheckpointerContext,
  type CheckpointerEmitted,
  type CheckpointerEvent,
} from './checkpointer.machine.js';
export {
  dataGuardMachine,
  type DataGuardContext,
  type DataGuardEmitted,
  type DataGuardEvent,
  type DataGuardInput,
} from './dataGuard.machine.js';
export {
  reconcilerMachine,
  type PositionsCheck,
  type Reconciliation,
  type ReconcilerContext,
  type ReconcilerEmitted,
  type ReconcilerEvent,
} from './reconciler.machine.js';
export { brokerMachine, type BrokerContext, type BrokerEmitted, type BrokerEvent } from './broker.machine.js';
export { barsMachine, type BarsContext, type BarsEmitted, type BarsEvent, type BarsInput } from './bars.machine.js';
export {
  sessionMachine,
  type SessionContext,
  type SessionEmitted,
  type SessionEvent,
  type SessionInput,
  type SessionStart,
  type Execution,
} from './session.machine.js';
export {
  idempotencyMachine,
  DEFAULT_IDEMPOTENCY_CONFIG,
  type IdempotencyConfig,
  type IdempotencyContext,
  type IdempotencyEvent,
  type IdempotencyEmitted,
  type IdempotencyRefusal,
  type ReserveResult,
  type MarkResult,
  type ReconcileResult,
  type LoadReport,
} from './idempotency.machine.js';
export {
  portfolioMachine,
  type PortfolioContext,
  type PortfolioEmitted,
  type PortfolioEvent,
  type PortfolioInput,
  type PortfolioStats,
} from './portfolio.machine.js';
export { riskMachine, type RiskContext, type RiskEmitted, type RiskEvent, type RiskInput, type RiskStats } from './risk.machine.js';
