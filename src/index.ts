/**
 * aistock — the state-management core of a trading session as an XState v5 actor system.
 * Everything a library user imports comes from here; machines from `aistock/machines`.
 */
export { AistockError } from './core/errors.js';
export { type Clock, systemClock, ManualClock } from './runtime/clock.js';
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
} from './runtime/stateFile.js';
export { lockStateDir, StateDirLockedError, type StateDirLock } from './runtime/stateDirLock.js';
export { fileCheckpointStore, InvalidCheckpointKeyError, type CheckpointStore } from './runtime/checkpointStore.js';
export {
  createCheckpointer,
  CheckpointerStoppedError,
  type Checkpointer,
  type CheckpointerOptions,
  type CheckpointerReport,
} from './runtime/checkpointer.js';
export { BarSchema, barDefect, type Bar, type BarDefect, type BarProblem } from './core/bar.js';
export {
  parseTimestamp,
  timestampParser,
  type TimestampOptions,
  type TimestampProblem,
  type TimestampResult,
} from './core/timestamps.js';
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
} from './core/timeframe.js';
export { isKnownZone, formatInZone } from './core/zoneOffsets.js';
export { createAggregator, aggregate, flush, openBars, AggregatorConfigSchema, AggregatorStateSchema } from './core/aggregator.js';
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
} from './core/dataGuard.js';
export { createBarHistory, recordBars, recentBars, lastPrice, warmUpStatus, BarHistoryStateSchema } from './core/barHistory.js';
export { createBarsState, processBars, flushBars, BarsConfigSchema, BarsStateSchema } from './core/barProcessor.js';
export {
  readBars,
  BarInputError,
  BAR_COLUMNS,
  formatOf,
  type ReadBarsOptions,
  type BarBatch,
  type BarInputReason,
} from './runtime/barReader.js';
