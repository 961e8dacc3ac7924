import { formatDecimal, formatMoney, parseMoney, parseRatio, RATIO_DECIMALS } from '../common/money.js';
import type { Summary } from '../session/createTradingSession.js';
import type { RecordedFigures } from './reportRecorder.js';
import { formatSignedPercent, totalReturn } from './reportFigures.js';

/**
 * What `aistock replay` adds to its summary (the `performance` key of `--json`, and lines of
 * the terminal summary): the return on the starting cash and the deepest drawdown over every
 * recorded run of the state dir. Exact decimal strings; pure.
 */
export interface ReplayPerformance {
  /** (equity − initial cash) / initial cash, to 1e-8; null when the starting cash is zero. */
  readonly return: string | null;
  /** The deepest drawdown recorded (null: none, or nothing recorded — see `recorded`). */
  readonly maxDrawdown: {
    /** (peak − trough) / peak, to 1e-8. */
    readonly ratio: string;
    readonly amount: string;
    readonly peak: string;
    readonly trough: string;
    /** Bar time of the trough (epoch ms). */
    readonly at: number;
  } | null;
  /** Whether the report recording worked (false: it failed, and `maxDrawdown` is unknown). */
  readonly recorded: boolean;
}

/** The performance of a finished replay from its summary and what the recorder holds. */
export function replayPerformance(summary: Summary, recorded: RecordedFigures | null): ReplayPerformance {
  const ratio = totalReturn(parseMoney(summary.portfolio.initialCash), parseMoney(summary.portfolio.equity));
  const drawdown = recorded?.maxDrawdown ?? null;
  return {
    return: ratio === null ? null : formatDecimal(ratio, RATIO_DECIMALS),
    maxDrawdown:
      drawdown === null
        ? null
        : { ratio: formatDecimal(drawdown.ratio, RATIO_DECIMALS), amount: formatMoney(drawdown.amount), peak: formatMoney(drawdown.peak), trough: formatMoney(drawdown.trough), at: drawdown.at },
    recorded: recorded !== null,
  };
}

/** The terminal summary's lines for return, max drawdown and denials by reason. */
export function performanceLines(summary: Summary, performance: ReplayPerformance): string[] {
  const drawdown = performance.maxDrawdown;
  const denied = Object.entries(summary.orders.deniedBy).sort(([a, x], [b, y]) => (y ?? 0) - (x ?? 0) || (a < b ? -1 : 1));
  const drawdownText = !performance.recorded
    ? 'n/a (the report recording failed)'
    : drawdown === null
      ? 'none'
      : `max ${formatDecimal(parseRatio(drawdown.ratio) * 100n, RATIO_DECIMALS, 2)}% (${drawdown.amount} below the peak ${drawdown.peak}, at ${new Date(drawdown.at).toISOString()}), over every recorded run`;
  return [
    `return    ${performance.return === null ? 'n/a' : formatSignedPercent(parseRatio(performance.return))} (equity ${summary.portfolio.equity} from ${summary.portfolio.initialCash})`,
    `drawdown  ${drawdownText}`,
    `denied    ${denied.length === 0 ? 'none' : denied.map(([code, n]) => `${code} ${n}`).join(', ')}`,
  ];
}
