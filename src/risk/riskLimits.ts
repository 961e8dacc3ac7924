import { IANAZone } from 'luxon';
import { z } from 'zod';
import { fieldIssues, FieldIssuesError, type FieldIssue } from '../common/fieldIssues.js';
import { parseMoney, parseQty, parseRatio, type Money, type Qty, type Ratio } from '../common/money.js';

/**
 * The risk engine's limits, with the original's names (camelCased) and defaults. Fractions are
 * of current equity. Validated with zod: {@link parseRiskLimits} rejects unknown keys (typos)
 * and reports every bad field at once.
 */

const fraction = (fallback: number) => z.number().gt(0).lte(1).default(fallback);
const positive = (fallback: number) => z.number().gt(0).finite().default(fallback);
const atLeastOne = (fallback: number) => z.number().int().min(1).default(fallback);

/** The risk limits; `z.input` of it is what users write, `z.infer` what the engine uses. */
export const RiskLimitsSchema = z
  .object({
    /** Equity loss since the trading day's start that halts trading (5%). */
    maxDailyLossPct: fraction(0.05),
    /** Equity loss from its peak that halts trading (15%). */
    maxDrawdownPct: fraction(0.15),
    /** Largest position, as a fraction of equity, an order may leave (20%). */
    maxPositionFraction: fraction(0.2),
    /** Largest Σ |position value| / equity an order may leave (2.0). */
    maxGrossExposure: positive(2),
    /** Largest |Σ position value| / equity an order may leave (2.0). */
    maxLeverage: positive(2),
    /** Largest notional of one order that opens or adds, as a fraction of equity (1%; the original's per-trade cap). */
    perTradeRiskPct: fraction(0.01),
    /** Largest |position value| per symbol, in account currency (100,000). */
    perSymbolNotionalCap: positive(100_000),
    /** Largest |position quantity| per symbol, in units (1,000). */
    maxSinglePositionUnits: positive(1_000),
    /** Whether the order-rate limits apply. */
    rateLimitEnabled: z.boolean().default(true),
    /** Orders reserved in any 60 s of the monotonic clock (10). */
    maxOrdersPerMinute: atLeastOne(10),
    /** Orders reserved per trading day (100). */
    maxOrdersPerDay: atLeastOne(100),
    /** Whether a daily-loss or drawdown breach halts trading (on). Off: breaches are only reported. */
    killSwitchEnabled: z.boolean().default(true),
    /** The exchange's zone: the trading day starts at its midnight (DST-correct). */
    exchangeTimeZone: z
      .string()
      .refine((zone) => IANAZone.isValidZone(zone), { message: 'not an IANA time zone (e.g. America/New_York)' })
      .default('America/New_York'),
  })
  .strict();

/** Validated risk limits, every field present. */
export type RiskLimits = z.infer<typeof RiskLimitsSchema>;
/** Risk limits as a user writes them: every field optional. */
export type RiskLimitsInput = z.input<typeof RiskLimitsSchema>;

/** A risk configuration that failed validation; `issues` lists every bad field. */
export class InvalidRiskLimitsError extends FieldIssuesError {
  constructor(issues: readonly FieldIssue[]) {
    super('INVALID_RISK_LIMITS', 'risk limits', issues);
  }
}

/** Validates risk limits (missing fields take their defaults). Throws {@link InvalidRiskLimitsError}. */
export function parseRiskLimits(input: unknown = {}): RiskLimits {
  const parsed = RiskLimitsSchema.safeParse(input);
  if (!parsed.success) throw new InvalidRiskLimitsError(fieldIssues(parsed.error));
  return parsed.data;
}

/** The original's defaults. */
export const DEFAULT_RISK_LIMITS: RiskLimits = parseRiskLimits({});

/**
 * Limits converted once to the scaled integers the checks compare against, so a check does
 * exact integer comparisons (`value × 1 < limit × equity`) and no division. Fractions keep
 * 8 decimals (half-even).
 */
export interface RiskRules {
  readonly limits: RiskLimits;
  readonly maxDailyLoss: Ratio;
  readonly maxDrawdown: Ratio;
  readonly maxPositionFraction: Ratio;
  readonly maxGrossExposure: Ratio;
  readonly maxLeverage: Ratio;
  readonly perTradeRisk: Ratio;
  readonly perSymbolNotionalCap: Money;
  readonly maxSinglePositionUnits: Qty;
}

/** Compiles validated limits into {@link RiskRules}. */
export function compileRiskRules(limits: RiskLimits): RiskRules {
  return Object.freeze({
    limits,
    maxDailyLoss: parseRatio(limits.maxDailyLossPct),
    maxDrawdown: parseRatio(limits.maxDrawdownPct),
    maxPositionFraction: parseRatio(limits.maxPositionFraction),
    maxGrossExposure: parseRatio(limits.maxGrossExposure),
    maxLeverage: parseRatio(limits.maxLeverage),
    perTradeRisk: parseRatio(limits.perTradeRiskPct),
    perSymbolNotionalCap: parseMoney(limits.perSymbolNotionalCap),
    maxSinglePositionUnits: parseQty(limits.maxSinglePositionUnits),
  });
}
