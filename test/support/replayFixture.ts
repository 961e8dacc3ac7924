import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { FillSchema } from '../../src/common/order.js';

export const bin = join(import.meta.dirname, '../../bin/aistock.js');
export const sampleCsv = join(import.meta.dirname, '../../data/sample-bars.csv');

/** The first `rows` bars of the bundled sample, as a CSV file in `dir`. */
export async function sampleSlice(dir: string, rows: number): Promise<string> {
  const lines = (await readFile(sampleCsv, 'utf8')).split('\n');
  const path = join(dir, `sample-${rows}.csv`);
  await writeFile(path, `${lines.slice(0, rows + 1).join('\n')}\n`);
  return path;
}

/** Runs `aistock …` to completion (with `env` added to the environment); never throws for a non-zero exit. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], {
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Lines a writer has finished in `file` (a torn last line is not counted); 0 for no file yet. */
export async function completeLines(file: string): Promise<number> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').length - 1;
}

/** Starts `aistock …` in the background (with `env` added to the environment). */
export function startCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
}

const orderLineSchema = z.object({ clientOrderId: z.string(), symbol: z.string(), side: z.enum(['buy', 'sell']), qty: z.string() });

async function jsonLines<T>(path: string, schema: z.ZodType<T>): Promise<T[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => schema.parse(JSON.parse(line)));
}

/** The PaperBroker's ledger in a state dir: what reached the market. */
export async function readLedger(stateDir: string) {
  return {
    orders: await jsonLines(join(stateDir, 'broker', 'orders.jsonl'), orderLineSchema),
    fills: await jsonLines(join(stateDir, 'broker', 'fills.jsonl'), FillSchema),
  };
}

/** Cents as a bigint from a decimal string, exactly (truncating below a cent is not needed: inputs are exact). */
function toMicros(decimal: string): bigint {
  const [whole = '0', fraction = ''] = decimal.replace('-', '').split('.');
  const value = BigInt(whole) * 1_000_000n + BigInt((fraction + '000000').slice(0, 6));
  return decimal.startsWith('-') ? -value : value;
}

/**
 * Cash and positions recomputed from the broker's fills alone, independently of the portfolio
 * code: cash in micro-units (exact for prices with ≤ 4 decimals and whole-share quantities).
 */
export function ledgerBook(initialCash: string, fills: readonly z.infer<typeof FillSchema>[]) {
  let cash = toMicros(initialCash);
  const positions = new Map<string, bigint>();
  for (const fill of fills) {
    const qty = BigInt(fill.qty);
    const notional = qty * toMicros(fill.price);
    cash += fill.side === 'buy' ? -notional : notional;
    cash -= toMicros(fill.commission);
    positions.set(fill.symbol, (positions.get(fill.symbol) ?? 0n) + (fill.side === 'buy' ? qty : -qty));
  }
  const cents = (cash + 5_000n) / 10_000n;
  const cashText = `${cents / 100n}.${String(cents % 100n).padStart(2, '0')}`;
  return { cash: cashText, positions: Object.fromEntries([...positions].filter(([, q]) => q !== 0n).map(([s, q]) => [s, q.toString()])) };
}
