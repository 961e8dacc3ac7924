import type { ActorOptions, AnyActorLogic } from 'xstate';
import { z } from 'zod';
import type { DataGuardConfigInput } from '../dataGuard/dataGuard.js';
import { AistockError } from '../common/errors.js';
import { ReconcilePolicySchema } from '../reconciler/reconcile.js';
import type { RiskLimitsInput } from '../risk/riskLimits.js';
import type { Strategy } from '../strategy/strategy.js';
import { TimeframeSchema, TIMEFRAME_MS } from '../bars/timeframe.js';
import { isKnownZone } from '../bars/zoneOffsets.js';
import { DurabilitySchema } from '../stateDir/durability.js';
import type { Broker } from '../broker/broker.js';
import type { SessionStore } from './sessionStore.js';
import { PaperBrokerSettingsSchema } from '../broker/paperBroker.js';
import type { Clock } from '../common/clock.js';
import type { DeadlineTimers } from './orderExecution.js';

/** The options of a trading session: the zod schema of its settings, and the live parts beside them. */

/** An IANA time zone luxon knows (`America/New_York`); shared with the replay config's zones. */
export const TimeZoneSchema = z.string().refine(isKnownZone, 'unknown IANA time zone');

/** Options of `createTradingSession`; validated with zod (see {@link SessionOptionsSchema}). */
export const SessionOptionsSchema = z.object({
  /** Holds `checkpoint.json`, `orders.journal`, `broker/` and `lock.owner.json`. */
  stateDir: z.string().min(1),
  /** Part of every client order id: keep it stable across restarts of one session. */
  sessionId: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/).default('aistock'),
  /** Only these symbols are traded; bars of others are dropped (default: every symbol). */
  symbols: z.array(z.string().min(1)).nullable().default(null),
  /** The zone buckets follow (IANA). */
  timeZone: TimeZoneSchema.default('America/New_York'),
  baseTimeframe: TimeframeSchema.default('1m'),
  timeframes: z.array(TimeframeSchema).min(1).default(['1m', '5m', '1h', '1d']),
  initialCash: z.union([z.string(), z.number()]).default('100000'),
  /** Risk limits (AIStock's names and defaults). */
  risk: z.record(z.string(), z.unknown()).default({}),
  /** Replay: time follows the bars (rate limits, trading day); no staleness check. */
  replay: z.boolean().default(false),
  /**
   * `none`: research mode — the journal, the broker ledger and the checkpoints are written as
   * always but never fsynced; the state dir is marked, and refused after a crash (see `Durability`).
   */
  durability: DurabilitySchema.default('full'),
  /** Longest wait for one broker call before its outcome counts as unknown. */
  brokerTimeoutMs: z.number().int().positive().default(5_000),
  /** Longest one `onBar` call may take (monotonic clock) before the session faults with `STRATEGY_FAILED`. */
  strategyTimeoutMs: z.number().int().positive().default(1_000),
  /** Least time between two checkpoints while running (draining always writes one). */
  checkpointIntervalMs: z.number().int().nonnegative().default(250),
  /** Bars of history kept per symbol and timeframe (part of every checkpoint). */
  historySize: z.number().int().positive().default(60),
  /** Broker vs portfolio positions at start and stop: book the broker's (`adopt`) or halt above `tolerance`. */
  reconcile: ReconcilePolicySchema.default({ policy: 'adopt', tolerance: 0.1, intervalMs: 60_000 }),
  /** Execution costs of the default PaperBroker (refused beside a `broker` of your own): see `PaperBrokerSettingsSchema`. */
  paperBroker: PaperBrokerSettingsSchema.pick({ slippageBps: true, commissionPerShare: true, minCommission: true }).strict().prefault({}),
});

/** Options of `createTradingSession`: the zod-checked settings plus the live parts (strategy, broker, clock, inspector, log). */
export interface TradingSessionOptions extends Partial<Omit<z.input<typeof SessionOptionsSchema>, 'stateDir' | 'risk'>> {
  stateDir: string;
  risk?: RiskLimitsInput;
  /** Data-guard thresholds (staleness, extreme range, low volume; see `DataGuardConfigSchema`). */
  guard?: DataGuardConfigInput;
  /** The strategy (default `smaCross()`). */
  strategy?: Strategy;
  /** The broker (default a `PaperBroker` in `<stateDir>/broker`). The session closes it on stop. */
  broker?: Broker;
  /**
   * Where the journal, the checkpoints and the single-writer hold live (default: the state dir's
   * files and lock). `postgresStore({ url })` puts them in PostgreSQL under `sessionId`, with a
   * fenced lease in place of the lock, and the default PaperBroker's ledger; `stateDir` then holds only
   * the report's records (and research mode's marker).
   */
  store?: SessionStore;
  clock?: Clock;
  /** What times broker-call deadlines (`brokerTimeoutMs`): Node's timers by default; xstate's `SimulatedClock` in tests. */
  timers?: DeadlineTimers;
  /** An XState inspector (e.g. `@statelyai/inspect`), passed to every actor of the session. */
  inspect?: ActorOptions<AnyActorLogic>['inspect'];
  /** Structured log lines (default: JSON on stderr). */
  log?: (entry: Record<string, unknown>) => void;
}

/** The session was given options it cannot run with. */
export class InvalidSessionOptionsError extends AistockError {
  constructor(detail: string) {
    super('INVALID_SESSION_OPTIONS', `invalid session options: ${detail}`);
  }
}


/** The settings as the schema leaves them (defaults filled in). */
export type SessionConfig = z.infer<typeof SessionOptionsSchema>;

/** Checks the settings of `options` (not its live parts); throws {@link InvalidSessionOptionsError}. */
export function parseSessionOptions(options: TradingSessionOptions): SessionConfig {
  const { strategy: _s, broker: _b, clock: _c, inspect: _i, log: _l, guard: _g, timers: _t, ...plain } = options;
  const parsed = SessionOptionsSchema.safeParse(plain);
  if (!parsed.success) throw new InvalidSessionOptionsError(z.prettifyError(parsed.error));
  const config = parsed.data;
  if (options.broker !== undefined && options.paperBroker !== undefined) {
    throw new InvalidSessionOptionsError('paperBroker sets the default PaperBroker; with a broker of your own, set its costs on it instead');
  }
  if (!config.timeframes.every((tf) => TIMEFRAME_MS[tf] % TIMEFRAME_MS[config.baseTimeframe] === 0)) {
    throw new InvalidSessionOptionsError(`every timeframe must be a multiple of the base ${config.baseTimeframe}`);
  }
  return config;
}
