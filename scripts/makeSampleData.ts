/**
 * Writes data/sample-bars.csv, the bars `npm start` replays, and data/sample-bars-dst.csv, the
 * slice of it the package ships (the whole file alone would break the tarball's 400 kB budget):
 *
 *   node --import tsx scripts/makeSampleData.ts
 *
 * Five US symbols, 1-minute bars of the regular session (09:30–16:00 America/New_York) for
 * the four weeks 2025-10-20 … 2025-11-14, which cross the 2025-11-02 DST change (the offset
 * goes from -04:00 to -05:00, so the session moves from 13:30Z to 14:30Z). Prices are random
 * walks with trends that change every few days, so a moving-average cross strategy trades.
 * Deterministic: a seeded PRNG, no clock; the same script always writes the same bytes.
 * The shipped slice is the two trading days around the DST change (Friday 2025-10-31 and
 * Monday 2025-11-03): 3,900 bars, the same lines as in the whole file.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DateTime } from 'luxon';
import { seededRandom } from '../src/testing/seededRandom.js';

const ZONE = 'America/New_York';
const FIRST_DAY = '2025-10-20';
const TRADING_DAYS = 20;
const SESSION_MINUTES = 390;
const SEED = 20_251_102;
/** The trading days of the shipped slice. */
const SLICE_DAYS = ['2025-10-31', '2025-11-03'];

/** Symbol, price on the first morning, volatility per minute, typical shares per minute. */
const SYMBOLS: readonly { symbol: string; price: number; sigma: number; volume: number }[] = [
  { symbol: 'AAPL', price: 252.3, sigma: 0.0007, volume: 90_000 },
  { symbol: 'MSFT', price: 514.6, sigma: 0.0006, volume: 40_000 },
  { symbol: 'NVDA', price: 182.9, sigma: 0.0011, volume: 320_000 },
  { symbol: 'JPM', price: 300.4, sigma: 0.0006, volume: 20_000 },
  { symbol: 'SPY', price: 664.2, sigma: 0.0004, volume: 120_000 },
];

const random = seededRandom(SEED);

/** A standard normal draw (Box–Muller). */
function normal(): number {
  const u = Math.max(random(), Number.EPSILON);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

const cents = (price: number): number => Math.round(price * 100) / 100;

/** Weekdays from FIRST_DAY (no US market holiday falls in these weeks). */
function tradingDays(): DateTime[] {
  const days: DateTime[] = [];
  for (let day = DateTime.fromISO(FIRST_DAY, { zone: ZONE }); days.length < TRADING_DAYS; day = day.plus({ days: 1 })) {
    if (day.weekday <= 5) days.push(day);
  }
  return days;
}

/** Intraday volume shape: heavy at the open and the close, light at lunch. */
function volumeShape(minute: number): number {
  const x = minute / (SESSION_MINUTES - 1);
  const burst = minute < 15 ? 0.8 : minute >= SESSION_MINUTES - 15 ? 0.6 : 0;
  return 0.6 + 3.2 * (x - 0.5) ** 2 + burst;
}

function main(): void {
  const walks = SYMBOLS.map((spec) => ({ ...spec, last: spec.price, drift: 0, regimeDaysLeft: 0 }));
  const lines = ['timestamp,symbol,open,high,low,close,volume'];
  for (const day of tradingDays()) {
    for (const walk of walks) {
      if (walk.regimeDaysLeft <= 0) {
        // A new trend every 2–4 days: up to about ±1.2 % a day, sometimes flat.
        walk.drift = (random() - 0.5) * 0.00006;
        walk.regimeDaysLeft = 2 + Math.floor(random() * 3);
      }
      walk.regimeDaysLeft -= 1;
      walk.last = cents(walk.last * (1 + normal() * 0.004)); // overnight gap
    }
    const open = day.set({ hour: 9, minute: 30 });
    for (let minute = 0; minute < SESSION_MINUTES; minute += 1) {
      const timestamp = open.plus({ minutes: minute }).toISO({ suppressMilliseconds: true });
      for (const walk of walks) {
        const barOpen = walk.last;
        const barClose = cents(barOpen * Math.exp(walk.drift + normal() * walk.sigma));
        const high = cents(Math.max(barOpen, barClose) * (1 + Math.abs(normal()) * walk.sigma * 0.4));
        const low = cents(Math.min(barOpen, barClose) * (1 - Math.abs(normal()) * walk.sigma * 0.4));
        const volume = Math.round(walk.volume * volumeShape(minute) * Math.exp(normal() * 0.35));
        lines.push(`${timestamp},${walk.symbol},${barOpen.toFixed(2)},${high.toFixed(2)},${low.toFixed(2)},${barClose.toFixed(2)},${volume}`);
        walk.last = barClose;
      }
    }
  }
  const data = join(dirname(fileURLToPath(import.meta.url)), '..', 'data');
  const write = (name: string, rows: string[]): void => {
    writeFileSync(join(data, name), `${rows.join('\n')}\n`);
    console.log(`wrote ${rows.length - 1} bars to ${join(data, name)}`);
  };
  write('sample-bars.csv', lines);
  write('sample-bars-dst.csv', lines.filter((line, index) => index === 0 || SLICE_DAYS.some((day) => line.startsWith(day))));
}

main();
