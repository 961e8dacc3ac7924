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
export { barsMachine, type BarsContext, type BarsEmitted, type BarsEvent, type BarsInput } from './bars.machine.js';
