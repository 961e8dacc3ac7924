import { createActor, fromPromise, waitFor, type AnyActorRef } from 'xstate';
import { brokerMachine } from '../../machines/broker.machine.js';
import type { Broker } from './broker.js';

/**
 * The broker connection as an actor (`machines/broker.machine.ts`, `systemId` `broker`): opens
 * the adapter and asks it what it holds, closes it at the end; a child of the session when
 * `parent` is given (its system, its inspector tree, its supervision).
 */

/** An open connection: the adapter, the ids the broker held when opened, and the actor. */
export interface BrokerConnection {
  readonly actor: ReturnType<typeof createBrokerActor>;
  readonly broker: Broker;
  readonly knownClientOrderIds: readonly string[];
  /** Closes the adapter through the actor (`draining → shutdown`); rejects with the adapter's error if the close failed. */
  close(): Promise<void>;
}

/** What the connection's I/O left: the adapter once made, and the errors of opening and closing it. */
export interface BrokerHeld {
  broker?: Broker;
  openError?: unknown;
  closeError?: unknown;
}

/** The broker machine with its I/O: `open` makes the adapter; what happens is kept in `held`. */
export function brokerLogic(open: () => Promise<Broker>, held: BrokerHeld) {
  return brokerMachine.provide({
    actors: {
      openAdapter: fromPromise<readonly string[]>(async () => {
        try {
          held.broker = await open();
          return await held.broker.knownClientOrderIds();
        } catch (error) {
          held.openError = error;
          throw error;
        }
      }),
      closeAdapter: fromPromise(async () => {
        try {
          await held.broker?.close();
        } catch (error) {
          held.closeError = error;
          throw error;
        }
      }),
    },
  });
}

function createBrokerActor(open: () => Promise<Broker>, held: BrokerHeld, parent?: AnyActorRef) {
  return createActor(brokerLogic(open, held), { systemId: 'broker', ...(parent ? { parent, id: 'broker' } : {}) });
}

/** Opens the broker through its actor; rejects with the adapter's own error when it cannot be opened. */
export async function openBrokerConnection(options: { open: () => Promise<Broker>; parent?: AnyActorRef }): Promise<BrokerConnection> {
  const held: BrokerHeld = {};
  const actor = createBrokerActor(options.open, held, options.parent);
  let fatal: unknown;
  // An unobserved actor error would crash the process; keep it and fail the caller with it instead.
  actor.subscribe({ error: (error) => (fatal = error) });
  actor.start();
  actor.send({ type: 'START' });
  const opened = await waitFor(actor, (s) => s.status !== 'active' || s.matches('running') || s.matches('faulted'), { timeout: Infinity });
  if (fatal !== undefined) throw fatal;
  const { broker } = held;
  if (opened.matches('faulted') || broker === undefined) {
    const openError = held.openError ?? new Error(opened.context.error ?? 'the broker did not open');
    // An adapter made but not usable (it could not list its orders) is closed, not left open.
    try {
      await held.broker?.close();
    } catch (closeError) {
      throw new AggregateError([openError, closeError], 'the broker could not be opened, nor closed after');
    }
    throw openError;
  }
  return {
    actor,
    broker,
    knownClientOrderIds: opened.context.knownClientOrderIds,
    close: async () => {
      actor.send({ type: 'STOP' });
      await waitFor(actor, (s) => s.status !== 'active' || s.hasTag('stopped'), { timeout: Infinity });
      if (fatal !== undefined) throw fatal;
      if (held.closeError !== undefined) throw held.closeError;
    },
  };
}
