import { z } from 'zod';
import { SYMBOL_PATTERN } from '../common/order.js';
import { EPOCH_UNITS } from './timestamps.js';

/**
 * How to read bar files as they come (Yahoo, ccxt, Alpaca, Polygon, a spreadsheet's export): the
 * column names a header may use, the delimiter, and the reader's options for what a file does
 * not say itself. Pure rules, used by the reader (`barReader.ts`) and tested on their own.
 */

/** A value a bar file's column (CSV) or key (JSON) can hold. `adjClose` is read only with `adjusted`. */
export type BarField = 'timestamp' | 'symbol' | 'open' | 'high' | 'low' | 'close' | 'volume' | 'adjClose';

/**
 * The closed alias table: every name a column or key may have, by field. Names are matched
 * trimmed, in any case and without spaces, `_`, `-` and `.` (`Adj Close`, `adj_close`,
 * `AdjClose` are one name), except the one-letter names, which match only as written in
 * lower case: in Alpaca's and Polygon's JSON an upper-case `T` is a message type or a ticker, not `t`.
 */
export const BAR_FIELD_ALIASES: Readonly<Record<BarField, readonly string[]>> = {
  timestamp: ['timestamp', 'time', 'date', 'datetime', 'ts', 't'],
  symbol: ['symbol', 'ticker', 'sym'],
  open: ['open', 'o'],
  high: ['high', 'h'],
  low: ['low', 'l'],
  close: ['close', 'c'],
  volume: ['volume', 'vol', 'v'],
  adjClose: ['adjclose', 'adjustedclose'],
};

const FIELD_BY_NAME: ReadonlyMap<string, BarField> = new Map(
  (Object.entries(BAR_FIELD_ALIASES) as [BarField, readonly string[]][]).flatMap(([field, names]) => names.map((name) => [name, field] as const)),
);

/**
 * The canonical columns (CSV) or keys (JSON lines) of a bar file, the order `aistock bars`
 * prints: the fields a bar needs from the file (the symbol may come from `--symbol` instead).
 */
export const BAR_COLUMNS = ['timestamp', 'symbol', 'open', 'high', 'low', 'close', 'volume'] as const;

/** The field a column or key name means, or null (see {@link BAR_FIELD_ALIASES} for the matching rule). */
export function fieldOfName(name: string): BarField | null {
  const trimmed = name.trim();
  if (trimmed.length === 1) return FIELD_BY_NAME.get(trimmed) ?? null;
  return FIELD_BY_NAME.get(trimmed.toLowerCase().replace(/[\s_.-]/g, '')) ?? null;
}

/** What the reader needs to know to resolve names: what the flags supply or ask for. */
export interface NameRules {
  /** `--symbol`: a file may then have no symbol column. */
  readonly symbolGiven: boolean;
  /** `--adjusted`: an adjusted-close column is then required. */
  readonly adjusted: boolean;
  /** `--ignore-extra`: names of no field are skipped instead of refused. */
  readonly ignoreExtra: boolean;
}

/** Where each field is: its position among the names, or -1 (absent). */
export type FieldPositions = Readonly<Record<BarField, number>>;

/** Why names cannot be read as a bar: the name to blame (as written), and what is wrong. */
export interface NameProblem {
  readonly reason: 'BAD_HEADER' | 'AMBIGUOUS_HEADER' | 'EXTRA_FIELD' | 'MISSING_FIELD';
  /** The name as written; `column N` for an unnamed CSV column. */
  readonly name: string;
  readonly detail: string;
}

/**
 * Resolves a header's (or a JSON object's) names to fields. Refused: a name of no field
 * (unless `ignoreExtra`; `EXTRA_FIELD` for JSON keys, `BAD_HEADER` for CSV columns — `kind`
 * says which), two names of one field (`AMBIGUOUS_HEADER`, naming both; the same name twice is a
 * repeated column, `BAD_HEADER`), a missing field (the symbol only without `symbolGiven`,
 * the adjusted close only with `adjusted`), an empty name.
 */
export function resolveNames(names: readonly string[], rules: NameRules, kind: 'column' | 'key'): FieldPositions | NameProblem {
  const positions: Record<BarField, number> = { timestamp: -1, symbol: -1, open: -1, high: -1, low: -1, close: -1, volume: -1, adjClose: -1 };
  for (let i = 0; i < names.length; i += 1) {
    const written = (names[i] ?? '').trim();
    if (written === '') return { reason: 'BAD_HEADER', name: `column ${i + 1}`, detail: `column ${i + 1} has no name` };
    const field = fieldOfName(written);
    if (field === null) {
      if (rules.ignoreExtra) continue;
      const what = kind === 'column' ? 'column' : 'key';
      return { reason: kind === 'column' ? 'BAD_HEADER' : 'EXTRA_FIELD', name: written, detail: `unknown ${what} ${JSON.stringify(written)} (--ignore-extra skips it)` };
    }
    const before = positions[field];
    if (before !== -1) {
      const first = (names[before] ?? '').trim();
      if (first.toLowerCase() === written.toLowerCase()) return { reason: 'BAD_HEADER', name: written, detail: `${kind} ${JSON.stringify(written)} is repeated` };
      return {
        reason: 'AMBIGUOUS_HEADER',
        name: written,
        detail: `${kind}s ${JSON.stringify(first)} and ${JSON.stringify(written)} both name the ${field}: keep one`,
      };
    }
    positions[field] = i;
  }
  for (const field of BAR_COLUMNS) {
    if (positions[field] !== -1 || (field === 'symbol' && rules.symbolGiven)) continue;
    const hint = field === 'symbol' ? ' (a file of one symbol: name it with --symbol SYM)' : '';
    return { reason: kind === 'column' ? 'BAD_HEADER' : 'MISSING_FIELD', name: field, detail: `no ${JSON.stringify(field)} ${kind}${hint}` };
  }
  if (rules.adjusted && positions.adjClose === -1) {
    return { reason: kind === 'column' ? 'BAD_HEADER' : 'MISSING_FIELD', name: 'adjClose', detail: `--adjusted needs an adjusted-close ${kind} (Adj Close)` };
  }
  return positions;
}

/** The delimiters a CSV file may use. */
export const CSV_DELIMITERS = [',', ';', '\t'] as const;
/** A CSV delimiter. */
export type CsvDelimiter = (typeof CSV_DELIMITERS)[number];

/**
 * The delimiter of a CSV file, from its header line: of `,` `;` and tab, the one that occurs
 * most often outside quotes; a comma when none does (a one-column header, refused later as
 * missing columns); null when two tie (the header does not say).
 */
export function sniffDelimiter(header: string): CsvDelimiter | null {
  const counts = new Map<CsvDelimiter, number>(CSV_DELIMITERS.map((d) => [d, 0]));
  let quoted = false;
  for (const char of header) {
    if (char === '"') quoted = !quoted;
    else if (!quoted && (char === ',' || char === ';' || char === '\t')) counts.set(char, (counts.get(char) ?? 0) + 1);
  }
  const ranked = [...counts].sort((a, b) => b[1] - a[1]);
  const [first, second] = ranked;
  if (first === undefined || first[1] === 0) return ',';
  return second !== undefined && second[1] === first[1] ? null : first[0];
}

/**
 * Open, high, low and close scaled by adjClose/close (`--adjusted`: a Yahoo download's
 * split- and dividend-adjusted prices). The close becomes the adjusted close as written; the
 * others are multiplied by the ratio and rounded to 12 significant digits, so the binary noise of
 * the division (185.64 × 184.25 / 185.64 = 184.25000000000003) never reaches a bar. Volume is
 * left as it is (Yahoo's is split-adjusted already).
 */
export function adjustPrices(open: number, high: number, low: number, close: number, adjClose: number): readonly [number, number, number, number] {
  const scale = (price: number): number => (price === close ? adjClose : Number(((price * adjClose) / close).toPrecision(12)));
  return [scale(open), scale(high), scale(low), adjClose];
}

/**
 * A bar file's format options, zod-checked: what the `aistock bars` and `aistock replay` flags
 * `--epoch`, `--symbol`, `--adjusted` and `--ignore-extra` set, and what a config file may carry.
 * The keys are `ReadBarsOptions`'s; the zone of naive times (`assumeZone`, `--assume-tz`) is
 * not among them: it is a setting of its own.
 */
export const BarFormatSchema = z
  .object({
    /** The unit of epoch timestamps. */
    epoch: z.enum(EPOCH_UNITS).nullable().optional(),
    /** The symbol of a file without a symbol column; rows that name another are refused. */
    symbol: z.string().regex(SYMBOL_PATTERN, 'not a symbol (1-32 letters, digits or . _ : / = ^ - starting with a letter or digit)').nullable().optional(),
    /** Read adjusted prices (scaled by Adj Close / Close) instead of the raw ones. */
    adjusted: z.boolean().optional(),
    /** Skip columns and keys of no field instead of refusing them. */
    ignoreExtra: z.boolean().optional(),
  })
  .strict();

/** A bar file's format options (see {@link BarFormatSchema}). */
export type BarFormat = z.infer<typeof BarFormatSchema>;
