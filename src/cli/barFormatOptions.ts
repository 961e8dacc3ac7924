import { BarFormatSchema, type BarFormat } from '../bars/barFormat.js';
import { EPOCH_UNITS } from '../bars/timestamps.js';
import { UsageError } from './usage.js';

/**
 * The bar-file flags `aistock bars` and `aistock replay` share: their parseArgs options, their
 * usage lines, and their values checked into a {@link BarFormat} (the reader's options).
 * `--assume-tz` is each command's own (replay's may come from its config file).
 */

/** parseArgs options of the bar-file flags: spread into a command's own. */
export const BAR_FORMAT_FLAGS = {
  epoch: { type: 'string' },
  symbol: { type: 'string' },
  adjusted: { type: 'boolean' },
  'ignore-extra': { type: 'boolean' },
} as const;

/** The bar-file flags and what they do, for the usage. */
const FLAG_HELP: readonly (readonly [string, string])[] = [
  ['--epoch s|ms|us|ns', 'the unit of numeric timestamps (default ms, and a number that\ncannot be ms is refused); with it, an instant outside 1971..2100 is refused'],
  ['--symbol SYM', 'the symbol of a file without a symbol column (with one, rows\nof another symbol are refused: SYMBOL_MISMATCH)'],
  ['--adjusted', 'prices scaled by Adj Close / Close (default: the raw prices)'],
  ['--ignore-extra', 'skip columns and keys of no bar field (default: refuse them)'],
];

/** The usage lines of the bar-file flags, their text from `column` on (each command aligns its own). */
export function barFormatUsage(column: number): string {
  const lines = FLAG_HELP.flatMap(([flag, help]) =>
    help.split('\n').map((text, i) => `${(i === 0 ? `  ${flag}` : '').padEnd(column)}${text}`),
  );
  return `${lines.join('\n')}
Columns are matched by name in any case (date, time, datetime, timestamp, ts, t; symbol, ticker,
sym; open, o; high, h; low, l; close, c; volume, vol, v; Adj Close); the delimiter (, ; or tab)
is the header's. A .json file is an array of ccxt rows [t,o,h,l,c,v] (t epoch ms) or bar objects.
`;
}

/** The values of {@link BAR_FORMAT_FLAGS} as parseArgs returns them. */
export interface BarFormatValues {
  epoch?: string | undefined;
  symbol?: string | undefined;
  adjusted?: boolean | undefined;
  'ignore-extra'?: boolean | undefined;
}

/** The reader's options from the flags; throws {@link UsageError} naming the bad flag. */
export function barFormatFrom(values: BarFormatValues): BarFormat {
  const checked = BarFormatSchema.safeParse({
    epoch: values.epoch ?? null,
    symbol: values.symbol ?? null,
    adjusted: values.adjusted === true,
    ignoreExtra: values['ignore-extra'] === true,
  });
  if (checked.success) return checked.data;
  const [issue] = checked.error.issues;
  const key = String(issue?.path[0] ?? '');
  const flag = FLAG_OF_KEY[key] ?? key;
  const given = (values as Record<string, unknown>)[flag.slice(2)];
  const expected = key === 'epoch' ? `one of ${EPOCH_UNITS.join(' ')}` : (issue?.message ?? 'another value');
  throw new UsageError(`${flag} ${JSON.stringify(given)} is not ${expected.replace(/^not /, '')}`);
}

const FLAG_OF_KEY: Readonly<Record<string, string>> = { epoch: '--epoch', symbol: '--symbol', adjusted: '--adjusted', ignoreExtra: '--ignore-extra' };
