// @ts-check
// A strategy module for `aistock replay --strategy ./meanReversion.strategy.js` (or a config's
// `strategy.use`). Its default export is a factory: aistock calls it with the config's
// `strategy.params`, and it checks them itself.
import { z } from 'zod';

const ParamsSchema = z
  .object({
    /** Closes in the moving average and its standard deviation. */
    window: z.number().int().min(2).max(500).default(20),
    /** Buy when the close is this many standard deviations below the average. */
    entryZ: z.number().positive().default(2),
    /** Money spent per entry, in whole shares at the bar's close. */
    notional: z.number().positive().default(900),
  })
  .strict();

/**
 * Per symbol: buy `notional` worth when the close falls `entryZ` standard deviations below its
 * `window`-bar average while flat; sell the whole position once the close is back above the average.
 * @param {z.input<typeof ParamsSchema>} params
 * @returns {import('aistock').Strategy<Record<string, number[]>>}
 */
export default function meanReversion(params = {}) {
  const { window, entryZ, notional } = ParamsSchema.parse(params);
  return {
    // Part of every client order id: the params that change decisions are in it.
    id: `meanrev${window}z${entryZ}`,
    stateSchema: z.record(z.string(), z.array(z.number())),
    initialState: () => ({}),
    onBar(state, bar, position) {
      // A symbol may be named like an Object member (`constructor`): read own keys only.
      const previous = Object.hasOwn(state, bar.symbol) ? (state[bar.symbol] ?? []) : [];
      // The state is checkpointed: keep it bounded, the last `window` closes.
      const closes = [...previous.slice(-(window - 1)), bar.close];
      const next = { ...state, [bar.symbol]: closes };
      if (closes.length < window) return { state: next, intents: [] };
      const mean = closes.reduce((sum, close) => sum + close, 0) / window;
      const deviation = Math.sqrt(closes.reduce((sum, close) => sum + (close - mean) ** 2, 0) / window);
      const held = Number(position) > 0;
      const shares = Math.floor(notional / bar.close);
      if (!held && deviation > 0 && bar.close < mean - entryZ * deviation && shares > 0) {
        return { state: next, intents: [{ symbol: bar.symbol, side: 'buy', qty: String(shares), type: 'market', reason: 'below the band' }] };
      }
      if (held && bar.close > mean) {
        return { state: next, intents: [{ symbol: bar.symbol, side: 'sell', qty: position, type: 'market', reason: 'back above the mean' }] };
      }
      return { state: next, intents: [] };
    },
  };
}
