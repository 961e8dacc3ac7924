/**
 * Portfolio and risk: fills applied through the portfolio actor in batches, pre-trade checks
 * (the pure check the hot path calls, and batched through the risk actor), and equity reads
 * with 500 symbols held. Targets: ≥ 500,000 fills/s and ≥ 1,000,000 risk checks/s (the original
 * applies ~220,000 fills/s with Decimal and a lock).
 */
import { performance } from 'node:perf_hooks';
import { createActor } from 'xstate';
import { portfolioMachine } from '../machines/portfolio.machine.js';
import { riskMachine } from '../machines/risk.machine.js';
import { parsePrice, parseQty } from '../src/common/money.js';
import type { Fill } from '../src/common/order.js';
import { applyFills, createPortfolio, markToMarket, portfolioSummary, valuation } from '../src/portfolio/portfolio.js';
import { accountView, checkOrder, createRiskState, updateAccount, type OrderCheck, type OrderCheckRequest } from '../src/risk/risk.js';
import { compileRiskRules, parseRiskLimits } from '../src/risk/riskLimits.js';
import { report } from './report.js';

const SYMBOLS = Array.from({ length: 500 }, (_, i) => `SYM${i}`);
const FILLS = 1_000_000;
const BATCH = 1_000;

// Seeded, so every run measures the same work.
let seed = 42;
const random = (n: number): number => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed % n;
};

/** Times `work` over `count` operations, best of `runs`, in operations per second. */
function bestRate(count: number, runs: number, work: () => void): number {
  let best = 0;
  for (let run = 0; run < runs; run += 1) {
    // bench/run.ts starts node with --expose-gc: start each run with a clean heap.
    (globalThis as { gc?: () => void }).gc?.();
    const started = performance.now();
    work();
    best = Math.max(best, count / ((performance.now() - started) / 1_000));
  }
  return best;
}

// ---- fills through the actor ----
// 100 distinct batches, sent in turn: test data the size of a million fills held in memory
// would make the garbage collector measure the bench instead of the portfolio.
const batches: Fill[][] = [];
for (let b = 0; b < 100; b += 1) {
  const batch: Fill[] = [];
  for (let i = 0; i < BATCH; i += 1) {
    batch.push({
      clientOrderId: `bench-${b}-${i}`,
      symbol: SYMBOLS[random(SYMBOLS.length)] ?? 'SYM0',
      side: random(2) === 0 ? 'buy' : 'sell',
      qty: String(1 + random(100)),
      price: ((1_000 + random(99_000)) / 100).toFixed(2),
      commission: '0.35',
      filledAt: 1_735_830_000_000 + b,
    });
  }
  batches.push(batch);
}
const fillsPerSec = bestRate(FILLS, 3, () => {
  const actor = createActor(portfolioMachine, { input: { portfolio: createPortfolio({ initialCash: '100000000' }) } }).start();
  actor.send({ type: 'START' });
  for (let sent = 0; sent < FILLS; sent += BATCH) actor.send({ type: 'FILLS', fills: batches[(sent / BATCH) % batches.length] ?? [] });
  if (actor.getSnapshot().context.portfolio.fillCount !== FILLS) throw new Error('not every fill was applied');
});
report('portfolioRisk', 'fillsPerSec', fillsPerSec, 'fills/s');

// ---- a portfolio holding all 500 symbols ----
let held = applyFills(
  createPortfolio({ initialCash: '100000000' }),
  SYMBOLS.map((symbol, i) => ({ clientOrderId: `seed-${i}`, symbol, side: 'buy', qty: '100', price: '50.00', commission: '0', filledAt: 0 })),
).portfolio;
held = markToMarket(held, SYMBOLS.map((symbol, i) => [symbol, parsePrice(50 + (i % 10))] as const));

// ---- risk checks: the pure check, all limits on, rate limits counted ----
const rules = compileRiskRules(parseRiskLimits({ maxOrdersPerMinute: 1_000_000, maxOrdersPerDay: 1_000_000 }));
const riskState = updateAccount(createRiskState(), rules, accountView(held)).state;
const orders: OrderCheck[] = SYMBOLS.map((symbol, i) => ({
  orderId: `check-${i}`,
  symbol,
  side: i % 2 === 0 ? 'buy' : 'sell',
  qty: parseQty(String(1 + (i % 20))),
  price: parsePrice(50 + (i % 10)),
}));
const CHECKS = 2_000_000;
let approved = 0;
const riskChecksPerSec = bestRate(CHECKS, 3, () => {
  approved = 0;
  for (let i = 0; i < CHECKS; i += 1) {
    const order = orders[i % orders.length];
    if (order !== undefined && checkOrder(riskState, rules, order, i).verdict === 'approve') approved += 1;
  }
});
if (approved !== CHECKS) throw new Error(`expected every check to approve, ${approved} did`);
report('portfolioRisk', 'riskChecksPerSec', riskChecksPerSec, 'checks/s');

// ---- risk checks batched through the actor (each approval also holds a rate-limit slot) ----
const ACTOR_CHECKS = 200_000;
const requests: OrderCheckRequest[] = SYMBOLS.map((symbol, i) => ({
  orderId: `actor-check-${i}`,
  intent: { symbol, side: i % 2 === 0 ? 'buy' : 'sell', qty: String(1 + (i % 20)), type: 'market' },
  price: 50 + (i % 10),
}));
const riskActorChecksPerSec = bestRate(ACTOR_CHECKS, 3, () => {
  const actor = createActor(riskMachine, { input: { limits: parseRiskLimits({ rateLimitEnabled: false }), state: riskState } }).start();
  actor.send({ type: 'START' });
  for (let sent = 0; sent < ACTOR_CHECKS; sent += requests.length) {
    actor.send({ type: 'CHECK_ORDERS', checkId: `batch-${sent}`, orders: requests, at: { wallMs: 1_735_830_000_000, monoMs: sent } });
  }
  if (actor.getSnapshot().context.stats.checked !== ACTOR_CHECKS) throw new Error('not every check was answered');
});
report('portfolioRisk', 'riskActorChecksPerSec', riskActorChecksPerSec, 'checks/s');

// ---- equity reads with 500 symbols held ----
const portfolioActor = createActor(portfolioMachine, { input: { portfolio: held } }).start();
const READS = 2_000_000;
let equitySum = 0n;
const equitySnapshotsPerSec = bestRate(READS, 3, () => {
  for (let i = 0; i < READS; i += 1) equitySum += valuation(portfolioActor.getSnapshot().context.portfolio).equity;
});
report('portfolioRisk', 'equitySnapshotsPerSec', equitySnapshotsPerSec, 'snapshots/s');

// The full Summary formats every position as decimal strings: what stop() and --json pay.
const SUMMARIES = 2_000;
const summariesPerSec = bestRate(SUMMARIES, 3, () => {
  for (let i = 0; i < SUMMARIES; i += 1) portfolioSummary(portfolioActor.getSnapshot().context.portfolio);
});
report('portfolioRisk', 'summariesPerSec', summariesPerSec, 'summaries/s');

// A mark of all 500 prices in one MARK event (a bar batch's closes).
const MARKS = 2_000;
const priceSets = Array.from({ length: 10 }, (_, i) => Object.fromEntries(SYMBOLS.map((symbol, s) => [symbol, 50 + ((i + s) % 10)])));
const marksPerSec = bestRate(MARKS, 3, () => {
  for (let i = 0; i < MARKS; i += 1) portfolioActor.send({ type: 'MARK', prices: priceSets[i % priceSets.length] ?? {} });
});
report('portfolioRisk', 'markAll500PerSec', marksPerSec, 'marks/s');
if (equitySum === 0n) throw new Error('equity reads were optimised away');
