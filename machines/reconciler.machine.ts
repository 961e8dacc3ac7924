import { assign, enqueueActions, fromPromise, setup, type AnyActorRef } from 'xstate';
import type { Fill } from '../src/common/order.js';
import type { Portfolio } from '../src/portfolio/portfolio.js';
import type { FillCounts } from '../src/session/fillCounts.js';
import { describeErrorEvent } from '../src/common/errors.js';
import { LIFECYCLE, lifecycleStates, type LifecycleEvent } from './lifecycle.js';

/**
 * The reconciler (AIStock's PositionReconciler) while a session runs: `running` is `ready ↔
 * checking`. Create it with `systemId: 'reconciler'`; the check itself (ask the broker, compare,
 * record the report) is supplied with `.provide()` (`checkPositions`).
 *
 * - `CHECK` (the portfolio and the fills it holds) starts a check; its outcome is answered to
 *   `reportTo` and to listeners: `RECONCILED` (a halt when the difference is one the policy halts
 *   on, and the fills that book the broker's positions when it adopts them) or `RECONCILE_FAILED`
 *   (the broker could not answer: asked again at the next interval). A `CHECK` while checking is
 *   answered `RECONCILE_FAILED` at once (`ALREADY_CHECKING`), never queued or dropped silently.
 * - `STOP` while checking does not wait for a broker that may not answer: the check is abandoned,
 *   and answered so (`ABANDONED`); the session's drain reconciles one last time anyway.
 * - The checks at start and at stop are the start sequence's and the drain's
 *   (`src/session/sessionReconciler.ts`).
 */

/** What a check decided: a halt, and the fills that book the broker's positions (`adopt`). */
export interface Reconciliation {
  halt: { code: string; detail: string; at: number } | null;
  adoptionFills: Fill[];
}

/** What a check is given: the portfolio as it stands, and how many of each order's fills it holds. */
export interface PositionsCheck {
  portfolio: Portfolio;
  appliedFills: FillCounts;
}

/** What the reconciler accepts. */
export type ReconcilerEvent = LifecycleEvent | ({ type: 'CHECK' } & PositionsCheck);

/** What it answers. */
export type ReconcilerEmitted =
  | { type: 'RECONCILED'; reconciliation: Reconciliation }
  | { type: 'RECONCILE_FAILED'; code: 'BROKER_UNANSWERED' | 'ALREADY_CHECKING' | 'NOT_RUNNING' | 'ABANDONED'; error: string };

/** The reconciler's context: the check in flight, counters, and who else receives the answers. */
export interface ReconcilerContext {
  pending: PositionsCheck | null;
  checks: number;
  failed: number;
  reportTo: AnyActorRef | null;
}

/** The reconciler machine (`id`/`systemId` `reconciler`); see the comment at the top of this file. */
export const reconcilerMachine = setup({
  types: {
    context: {} as ReconcilerContext,
    events: {} as ReconcilerEvent,
    input: {} as { reportTo?: AnyActorRef } | undefined,
    emitted: {} as ReconcilerEmitted,
  },
  actors: {
    /** Asks the broker, compares, records the report; returns what the session does about it. */
    checkPositions: fromPromise<Reconciliation, PositionsCheck>(async () => {
      throw new Error('checkPositions is not provided: use reconcilerMachine.provide({ actors })');
    }),
  },
  actions: {
    takeCheck: assign({
      pending: ({ event }) => (event.type === 'CHECK' ? { portfolio: event.portfolio, appliedFills: event.appliedFills } : null),
      checks: ({ context }) => context.checks + 1,
    }),
    answer: enqueueActions(({ context, event, enqueue }, params: { outcome: 'done' | 'failed' | 'busy' | 'stopped' | 'abandoned' }) => {
      const failed = (code: 'BROKER_UNANSWERED' | 'ALREADY_CHECKING' | 'NOT_RUNNING' | 'ABANDONED', error: string) =>
        ({ type: 'RECONCILE_FAILED', code, error }) as const;
      const answers = {
        done: () => ({ type: 'RECONCILED' as const, reconciliation: (event as unknown as { output: Reconciliation }).output }),
        failed: () => failed('BROKER_UNANSWERED', describeErrorEvent(event)),
        busy: () => failed('ALREADY_CHECKING', 'a check is in flight'),
        stopped: () => failed('NOT_RUNNING', 'the reconciler is not running'),
        abandoned: () => failed('ABANDONED', 'stopped while the broker was being asked'),
      };
      const answer: ReconcilerEmitted = answers[params.outcome]();
      // Only a broker that did not answer is a failed check.
      if (params.outcome === 'failed') enqueue.assign({ failed: context.failed + 1 });
      if (params.outcome !== 'busy') enqueue.assign({ pending: null });
      enqueue.emit(answer);
      if (context.reportTo !== null) enqueue.sendTo(context.reportTo, answer);
    }),
  },
}).createMachine({
  id: 'reconciler',
  context: ({ input }) => ({ pending: null, checks: 0, failed: 0, reportTo: input?.reportTo ?? null }),
  initial: LIFECYCLE.idle,
  // Outside `running` a check is answered at once, never left waiting.
  on: { CHECK: { actions: { type: 'answer', params: { outcome: 'stopped' } } } },
  states: lifecycleStates({
    running: {
      initial: 'ready',
      states: {
        ready: {
          on: { CHECK: { target: 'checking', actions: 'takeCheck' } },
        },
        checking: {
          on: {
            CHECK: { description: 'one check at a time: answered, not queued', actions: { type: 'answer', params: { outcome: 'busy' } } },
            STOP: { target: `#reconciler.${LIFECYCLE.draining}`, actions: { type: 'answer', params: { outcome: 'abandoned' } } },
          },
          invoke: {
            id: 'checker',
            src: 'checkPositions',
            input: ({ context }: { context: ReconcilerContext }) => {
              // Entered only through CHECK, which sets it: a missing one is a bug, and faults the actor.
              if (context.pending === null) throw new Error('checking without a check');
              return context.pending;
            },
            onDone: { target: 'ready', actions: { type: 'answer', params: { outcome: 'done' } } },
            onError: { target: 'ready', actions: { type: 'answer', params: { outcome: 'failed' } } },
          },
        },
      },
    },
    draining: {
      description: 'a check in flight is abandoned: the broker may not answer, and the drain reconciles anyway',
      always: { target: LIFECYCLE.shutdown },
    },
  }),
});
