/**
 * aistock — the state-management core of a trading session as an XState v5 actor system.
 * Everything a library user imports comes from here; machines from `aistock/machines`.
 */
export { AistockError, OptionalPackageUnavailableError } from './common/errors.js';
export { SymbolMap } from './common/keyed.js';
export { type Clock, systemClock, ManualClock, offsetClock } from './common/clock.js';
export {
  readStateFile,
  writeStateFile,
  moveAside,
  atomicFileWriter,
  StateFileError,
  type FileWriter,
  type StateFileRead,
  type StateFileFormat,
  type CorruptReason,
} from './stateDir/stateFile.js';
export {
  lockStateDir,
  StateDirLockedError,
  StateDirLockedElsewhereError,
  StateDirLockUnsupportedError,
  LOCK_OWNER_FILE,
  type StateDirLock,
  type LockOwner,
  type LockOptions,
} from './stateDir/stateDirLock.js';
export { DurabilitySchema, type Durability } from './stateDir/durability.js';
export { NonDurableStateDirError, NON_DURABLE_MARKER_FILE } from './stateDir/nonDurableRun.js';
export { fileCheckpointStore, InvalidCheckpointKeyError, type CheckpointStore } from './checkpointer/checkpointStore.js';
export {
  createCheckpointer,
  CheckpointerFailedError,
  CheckpointerStoppedError,
  type Checkpointer,
  type CheckpointerOptions,
  type CheckpointerReport,
} from './checkpointer/checkpointer.js';
export { BarSchema, barDefect, type Bar, type BarDefect, type BarProblem } from './bars/bar.js';
export {
  parseTimestamp,
  timestampParser,
  EPOCH_UNITS,
  type EpochUnit,
  type TimestampOptions,
  type TimestampProblem,
  type TimestampResult,
} from './bars/timestamps.js';
export {
  TIMEFRAMES,
  TIMEFRAME_MS,
  TimeframeSchema,
  SessionAnchorSchema,
  bucketStart,
  bucketRule,
  bucketBounds,
  divides,
  type Timeframe,
  type TimeframeBar,
} from './bars/timeframe.js';
export { isKnownZone, formatInZone } from './bars/zoneOffsets.js';
export { createAggregator, aggregate, flush, openBars, AggregatorConfigSchema, AggregatorStateSchema } from './bars/aggregator.js';
export {
  createDataGuard,
  screenBars,
  sizeFactorOf,
  rejectedTotal,
  GUARD_REASONS,
  DataGuardConfigSchema,
  GuardStateSchema,
  type GuardFinding,
  type GuardReason,
  type GuardAction,
  type GuardState,
} from './dataGuard/dataGuard.js';
export { createBarHistory, recordBars, recentBars, lastPrice, warmUpStatus, BarHistoryStateSchema } from './bars/barHistory.js';
export { createBarsState, processBars, flushBars, BarsConfigSchema, BarsStateSchema } from './bars/barProcessor.js';
export {
  readBars,
  BarInputError,
  BAR_COLUMNS,
  formatOf,
  type ReadBarsOptions,
  type BarBatch,
  type BarFileFormat,
  type BarInputReason,
} from './bars/barReader.js';
export { BarFormatSchema, BAR_FIELD_ALIASES, type BarFormat, type BarField } from './bars/barFormat.js';
export {
  createTradingSession,
  SessionOptionsSchema,
  InvalidSessionOptionsError,
  SessionFaultedError,
  LegacyOrderIdsError,
  type TradingSession,
  type TradingSessionOptions,
  type Summary,
  type ReconcileCounts,
  type SessionEvent,
  type SessionEventOf,
  type SessionEventType,
  type SessionOn,
} from './session/createTradingSession.js';
export { SessionCheckpointSchema, type SessionCheckpoint } from './session/sessionCheckpoint.js';
export { smaCross, SmaCrossOptionsSchema, StrategyTimeoutError, timeLimited, type BarMarket, type Strategy } from './strategy/strategy.js';
export {
  BrokerError,
  BrokerOrderSchema,
  BROKER_REJECT_REASONS,
  type Broker,
  type BrokerOrder,
  type BrokerOrderState,
  type BrokerOrderStatus,
  type BrokerRejectReason,
  type SubmitResult,
  type CancelResult,
  type BrokerBar,
  type BrokerErrorCode,
} from './broker/broker.js';
export {
  PaperBroker,
  PaperBrokerSettingsSchema,
  InvalidPaperBrokerOptionsError,
  type PaperBrokerOptions,
  type PaperBrokerFaults,
  type PaperBrokerOpenReport,
  type FillCopies,
  type LedgerFileKind,
} from './broker/paperBroker.js';
export {
  BrokerLedgerCorruptError,
  readLedger,
  filePaperBrokerLedger,
  type LedgerContents,
  type LedgerOrder,
  type LedgerRecords,
  type PaperBrokerLedgerStore,
} from './broker/paperBrokerLedger.js';
export { readClock, type ClockReading } from './common/clockReading.js';
export {
  createIdempotencyTracker,
  IdempotencyTrackerError,
  type IdempotencyTracker,
  type IdempotencyTrackerOptions,
  type StartReport,
  type IdempotencySnapshot,
  type IdempotencyReport,
  type IdempotencyLogEntry,
  type TrackerState,
} from './idempotency/idempotencyTracker.js';
export {
  clientOrderId,
  assertClientOrderId,
  clientOrderIdSchema,
  parseClientOrderId,
  sessionTag,
  symbolPrefix,
  isLegacyClientOrderId,
  orderIntentKeySchema,
  CLIENT_ORDER_ID_MAX_LENGTH,
  InvalidOrderIntentError,
  InvalidClientOrderIdError,
  type OrderIntentKey,
  type ClientOrderIdParts,
} from './idempotency/clientOrderId.js';
export {
  FileOrderJournal,
  JournalReadError,
  JournalWriteError,
  JournalClosedError,
  ORDER_JOURNAL_FILE,
  orderJournalPath,
  type OrderJournal,
  type JournalLoad,
  type TornTail,
  type JournalFaults,
} from './idempotency/orderJournal.js';
export {
  DEFAULT_TTL_MS,
  DEFAULT_JUMP_TOLERANCE_MS,
  type ReservationState,
  type OrderOutcome as JournalOrderOutcome,
  type ReserveVerdict,
  type ReservationCheck,
  type ClockJump,
} from './idempotency/idempotency.js';
export {
  QTY_DECIMALS,
  PRICE_DECIMALS,
  MONEY_DECIMALS,
  RATIO_DECIMALS,
  InvalidDecimalError,
  parseDecimal,
  parseQty,
  parsePrice,
  parseMoney,
  parseRatio,
  fromNumber,
  formatMoney,
  formatMoneyExact,
  formatQty,
  formatPrice,
  formatDecimal,
  formatPercent,
  divRoundHalfEven,
  notional,
  ratioOf,
  type Qty,
  type Price,
  type Money,
  type Ratio,
} from './common/money.js';
export {
  SideSchema,
  OrderIntentSchema,
  FillSchema,
  SymbolSchema,
  SYMBOL_PATTERN,
  QtyStringSchema,
  PriceStringSchema,
  CommissionStringSchema,
  MoneyStringSchema,
  sideSign,
  type Side,
  type OrderIntent,
  type Fill,
} from './common/order.js';
export {
  createPortfolio,
  PortfolioOptionsSchema,
  InvalidPortfolioError,
  applyFills,
  markToMarket,
  parseMarkPrices,
  deposit,
  withdraw,
  parseCashAmount,
  valuation,
  averagePrice,
  portfolioSummary,
  portfolioInvariantViolations,
  PortfolioSnapshotSchema,
  portfolioSnapshot,
  restorePortfolio,
  type Portfolio,
  type Position,
  type TradeRecord,
  type Valuation,
  type PortfolioSummary,
} from './portfolio/portfolio.js';
export {
  checkOrder,
  checkOrders,
  parseOrderCheck,
  DENY_CODES,
  createRiskState,
  accountView,
  updateAccount,
  breachReason,
  startTradingDayIfDue,
  tradingDayAt,
  tradingState,
  riskSummary,
  addHaltReason,
  setReduceReason,
  resumeTrading,
  reserveOrder,
  releaseHeldOrder,
  RiskSnapshotSchema,
  riskSnapshot,
  restoreRiskState,
  InvalidRiskSnapshotError,
  type RiskState,
  type OrderVerdict,
  type OrderCheckRequest,
  type DenyReason,
  type TradingState,
} from './risk/risk.js';
export { RiskLimitsSchema, parseRiskLimits, InvalidRiskLimitsError, DEFAULT_RISK_LIMITS, compileRiskRules, type RiskLimits, type RiskRules } from './risk/riskLimits.js';
export { renderMermaid } from './docs/mermaid.js';
export { renderMachinesDocument, DOCUMENTED_MACHINES, type DocumentedMachine } from './docs/machinesDocument.js';
export {
  ReconcilePolicySchema,
  positionDifferences,
  reconcileReport,
  adoptionFills,
  netFills,
  splitOwnFills,
  type OwnOrder,
  type ReconcilePolicy,
  type ReconcileReport,
  type PositionDifference,
} from './reconciler/reconcile.js';
export {
  startInspector,
  InspectorOptionsSchema,
  InspectorPortInUseError,
  InspectorStartError,
  InspectorUnavailableError,
  INSPECTOR_PACKAGE,
  type InspectorOptions,
  type RunningInspector,
} from './inspector/inspector.js';
export {
  startLiveView,
  LiveViewOptionsSchema,
  LiveViewUnavailableError,
  LIVE_VIEW_PACKAGE,
  type LiveViewOptions,
  type RunningLiveView,
} from './inspector/liveView.js';
export type { SessionStore, OpenSessionStore } from './session/sessionStore.js';
export { postgresStore, InvalidPostgresStoreOptionsError, type PostgresStoreOptions } from './postgresStore/postgresStore.js';
export { SessionLeaseHeldError, LeaseLostError, type LeaseTimers } from './postgresStore/postgresLease.js';
export { NonDurableServerError } from './postgresStore/durabilitySettings.js';
export { PostgresDriverUnavailableError, PostgresStoreError, POSTGRES_DRIVER_PACKAGE } from './postgresStore/postgresClient.js';
export { PostgresSchemaTooNewError, POSTGRES_SCHEMA_VERSION } from './postgresStore/postgresSchema.js';
export { PostgresPaperBrokerLedger, openPostgresAudit, UnknownSessionError, type PostgresAudit, type PostgresPaperBrokerLedgerStats } from './postgresStore/postgresPaperBrokerLedger.js';
