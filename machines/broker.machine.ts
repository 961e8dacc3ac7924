import { assign, emit, fromPromise, setup } from 'xstate';
import { describeErrorEvent } from '../src/common/errors.js';
import { LIFECYCLE, lifecycleStatesWithFault, type LifecycleEvent } from './lifecycle.js';

/**
 * The broker connection (AIStock's BaseBroker lifecycle): `idle → opening → running →
 * draining → shutdown`, plus `faulted`. Create it with `systemId: 'broker'`; the adapter's I/O is
 * supplied with `.provide()` (`openAdapter`, `closeAdapter`).
 *
 * - `START` opens the adapter and asks it for every client order id it holds (the broker is the
 *   source of truth for what was sent); `running` holds them (`knownClientOrderIds`).
 * - An adapter that cannot be opened is `faulted`, with the error: nothing can be sent.
 * - `STOP` while opening is kept: the adapter is closed once open, never left open.
 * - `STOP` while running closes the adapter (`draining`); a close that fails still ends in
 *   `shutdown`, with the error kept and reported (`BROKER_CLOSE_FAILED`).
 *
 * Orders themselves go through the adapter (`src/session/orderExecution.ts`): each call has its
 * own deadline and outcome; this machine is the connection they use.
 */

/** What the broker connection accepts: the lifecycle. */
export type BrokerEvent = LifecycleEvent;

/** What it tells observers (`actor.on(type, …)`). */
export type BrokerEmitted =
  | { type: 'BROKER_OPENED'; knownClientOrderIds: readonly string[] }
  | { type: 'BROKER_OPEN_FAILED'; error: string }
  | { type: 'BROKER_CLOSE_FAILED'; error: string };

/** The connection's context: the ids the broker held when opened, and the last I/O error. */
export interface BrokerContext {
  knownClientOrderIds: readonly string[];
  error: string | null;
  stopRequested: boolean;
}

/** The broker connection machine (`id`/`systemId` `broker`); see the comment at the top of this file. */
export const brokerMachine = setup({
  types: {
    context: {} as BrokerContext,
    events: {} as BrokerEvent,
    emitted: {} as BrokerEmitted,
  },
  actors: {
    /** Opens the adapter and returns every client order id it holds. */
    openAdapter: fromPromise<readonly string[]>(async () => {
      throw new Error('openAdapter is not provided: use brokerMachine.provide({ actors })');
    }),
    /** Closes the adapter. */
    closeAdapter: fromPromise<void>(async () => {
      throw new Error('closeAdapter is not provided: use brokerMachine.provide({ actors })');
    }),
  },
  actions: {
    takeKnownIds: assign({ knownClientOrderIds: ({ event }) => (event as unknown as { output: readonly string[] }).output }),
    reportOpened: emit(({ context }) => ({ type: 'BROKER_OPENED' as const, knownClientOrderIds: context.knownClientOrderIds })),
    recordError: assign({ error: ({ event }) => describeErrorEvent(event) }),
    reportOpenFailed: emit(({ context }) => ({ type: 'BROKER_OPEN_FAILED' as const, error: context.error ?? '' })),
    reportCloseFailed: emit(({ context }) => ({ type: 'BROKER_CLOSE_FAILED' as const, error: context.error ?? '' })),
    requestStop: assign({ stopRequested: true }),
  },
  guards: {
    stopRequested: ({ context }) => context.stopRequested,
  },
}).createMachine({
  id: 'broker',
  context: { knownClientOrderIds: [], error: null, stopRequested: false },
  initial: LIFECYCLE.idle,
  states: {
    ...lifecycleStatesWithFault({
      idle: { on: { START: 'opening' } },
      running: {},
      draining: {
        invoke: {
          id: 'closer',
          src: 'closeAdapter',
          onDone: LIFECYCLE.shutdown,
          onError: { target: LIFECYCLE.shutdown, actions: ['recordError', 'reportCloseFailed'] },
        },
      },
      faulted: {},
    }),
    opening: {
      on: { STOP: { description: 'kept: the adapter is closed once it is open', actions: 'requestStop' } },
      invoke: {
        id: 'opener',
        src: 'openAdapter',
        onDone: [
          { guard: 'stopRequested', target: LIFECYCLE.draining, actions: ['takeKnownIds', 'reportOpened'] },
          { target: LIFECYCLE.running, actions: ['takeKnownIds', 'reportOpened'] },
        ],
        onError: { target: LIFECYCLE.faulted, actions: ['recordError', 'reportOpenFailed'] },
      },
    },
  },
});
