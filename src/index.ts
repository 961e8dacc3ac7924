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
