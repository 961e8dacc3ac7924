/**
 * `aistock/testing`: what a user needs to model-test their own embedding of aistock — the
 * graph-path helpers the project's own model tests use (and `systemPaths`, for a tree of actors), a clock that moves only when told,
 * a file writer that fails on command, a counter of the fsyncs a run makes, and the PaperBroker's fault switches.
 */
export {
  modelPaths,
  replayPath,
  statesReached,
  allStateIds,
  stateIdsOf,
  systemPaths,
  CannotHappenHere,
  ModelStepMismatch,
  type SystemPathOptions,
  type ModelPath,
  type ModelStep,
  type ModelPathOptions,
  type ModelEventOf,
  type AfterEvent,
  type LiveSystem,
} from './modelTesting.js';
export { FaultyWriter, errnoError } from './faultyWriter.js';
export { countSyncs, type SyncCount } from './syncCounter.js';
export { seededRandom } from './seededRandom.js';
export { ManualClock, type Clock } from '../common/clock.js';
export { PaperBroker, type PaperBrokerFaults, type PaperBrokerOptions } from '../broker/paperBroker.js';
export { SimulatedClock } from 'xstate';
