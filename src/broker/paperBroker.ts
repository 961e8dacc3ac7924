import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { AistockError, describeError } from '../common/errors.js';
import {
  formatMoneyExact,
  formatPrice,
  formatQty,
  fromNumber,
  min,
  parseMoney,
  parsePrice,
  parseQty,
  PRICE_DECIMALS,
  type Money,
  type Price,
  type Qty,
} from '../common/money.js';
import { CommissionStringSchema, sideSign, type Fill } from '../common/order.js';
import {
  BrokerError,
  BrokerOrderSchema,
  type Broker,
  type BrokerBar,
  type BrokerOrder,
  type BrokerOrderState,
  type BrokerOrderStatus,
  type BrokerRejectReason,
  type CancelResult,
  type SubmitResult,
} from './broker.js';
import { systemClock, type Clock } from '../common/clock.js';
import { DurabilitySchema, diskSyncFor } from '../stateDir/durability.js';
import {
  BrokerLedgerCorruptError,
  carriedFill,
  carriedFills,
  filePaperBrokerLedger,
  type CancelLine,
  type LedgerFileKind,
  type LedgerRecords,
  type OrderAppend,
  type OrderLine,
  type PaperBrokerLedgerStore,
} from './paperBrokerLedger.js';
import { commissionFor, parseBps, splitQty, takerPrice } from './paperExecution.js';
import { keyed } from '../common/keyed.js';

/**
 * The embedded default {@link Broker}, standing in for the market. It keeps its own ledger in
 * `dir` (`<stateDir>/broker`): `orders.jsonl`, `fills.jsonl` (DESIGN.md) and `cancels.jsonl`
 * (cancels of working orders, which a reopen must not resurrect) — or in the `ledger` store it
 * is given (a {@link PaperBrokerLedgerStore}: PostgreSQL, through `postgresStore`), the same
 * records under the same rules, which live here, once, for every store. Every line is on disk
 * (fdatasync) before the call that made it resolves, with its CRC-32 — a market order filled at
 * submit is one durable line carrying its fill (paperBrokerLedger.ts) — ; on open the book and
 * positions are rebuilt from the ledger, so the ledger is the market's truth. A line that fails
 * its checksum, its schema or the book's consistency is never skipped: the broker refuses to
 * open ({@link BrokerLedgerCorruptError}, file, line and reason).
 *
 * Execution, deterministic from the bars it was shown (`observeBar`):
 * - A market order fills at submit at the symbol's last observed close, moved `slippageBps`
 *   against the taker and rounded half-even to 0.0001 (see paperExecution.ts), `filledAt` =
 *   that bar's `ts`. No bar seen yet for the symbol: rejected `NO_MARKET_PRICE`.
 * - A limit order rests, and fills at its limit price on a later bar that trades through it
 *   (buy: `low < limit`; sell: `high > limit`). No slippage on limit fills.
 * - With `partialFills: { parts: n }` an order fills in up to n parts (splitQty): the first as
 *   above, then one part per later bar of its symbol (market orders at that bar's open ±
 *   slippage). A resting order only fills on a bar whose `ts` is after the last bar it filled
 *   on, so a bar shown twice (a replay after a restart) does not fill it twice.
 * - Commission per fill = max(`minCommission`, qty × `commissionPerShare`), exact.
 * - Positions are the signed sums of fills. There is no cash account (no INSUFFICIENT_FUNDS).
 *
 * What a failure leaves: the in-memory book only ever shows what is durable. An order whose
 * line could not be written was not placed (`BROKER_LEDGER_FAILED`); a market order's fill at
 * submit is in that same line, so it stands or falls with it (its `fills.jsonl` copy, written
 * behind, is retried and rewritten on open if lost). A later fill whose line could not be
 * written did not happen: the order keeps resting. Rejections are not written: a rejected
 * order never reached the market, and the broker does not know its id.
 *
 * Duplicate client ids: with `rejectDuplicateIds` (default) a second order with a known id is
 * rejected; without, it is a new order. Then a reopen gives fills to same-id orders first in,
 * first out, and a cancel line to the latest working one: positions stay exact, but which of
 * two same-id orders a fill or cancel belonged to may differ from before the reopen.
 *
 * `observeBar` is the market itself, not a call over the connection: it works while
 * `faults.disconnect()` is on, and its fills still reach `onFill` listeners. Await each
 * observeBar's promise before the next bar: an order whose fill is being written is skipped
 * by bars that arrive meanwhile.
 */

/** Settings of {@link PaperBroker.open}, checked at open. */
export const PaperBrokerSettingsSchema = z.object({
  /** The ledger directory, `<stateDir>/broker`; created if missing. Required unless the options give a `ledger` store. */
  dir: z.string().min(1).optional(),
  /** Price moved against the taker, in basis points (0.01 %), for market fills. */
  slippageBps: z.number().min(0).lt(10_000).default(0),
  /** Commission per share (unit of quantity), up to 8 decimals: `"0.005"`. */
  commissionPerShare: z
    .string()
    .regex(/^\d+(\.\d{1,8})?$/, 'a non-negative decimal string with at most 8 decimals, like "0.005"')
    .default('0'),
  /** Least commission per fill: `"1.00"`. */
  minCommission: CommissionStringSchema.default('0'),
  /** Fill each order in up to `parts` parts, one per bar. */
  partialFills: z.object({ parts: z.number().int().min(1).max(1000) }).optional(),
  /** Reject a second order with a client id already received (a real broker's behaviour). */
  rejectDuplicateIds: z.boolean().default(true),
  /** Delay added to every call over the connection (see `faults.latencyMs`). */
  latencyMs: z.number().min(0).default(0),
  /** `none`: research mode, the ledger files are written but never synced (see `Durability`; a `ledger` store keeps its own durability). */
  durability: DurabilitySchema.default('full'),
});

/** Options of {@link PaperBroker.open}: the settings, plus the injected clock and sleep, and the ledger store in place of `dir`. */
export type PaperBrokerOptions = z.input<typeof PaperBrokerSettingsSchema> & {
  /** Where the ledger is kept, instead of the files in `dir` (give one of the two). The broker closes it. */
  ledger?: PaperBrokerLedgerStore;
  /** Stamps `receivedAt` and `cancelledAt` (wall clock). Default: `systemClock`. */
  clock?: Clock;
  /** How latency is waited out; inject a fake in tests. Default: a real timer. */
  sleep?: (ms: number) => Promise<void>;
  /** Structured log lines (a fill copy that could not be written, a ledger that failed to close). Default: none. */
  log?: (entry: Record<string, unknown>) => void;
};

/** {@link PaperBroker.open} was given settings it cannot use. Not retryable. */
export class InvalidPaperBrokerOptionsError extends AistockError {
  constructor(detail: string) {
    super('INVALID_BROKER_OPTIONS', `invalid PaperBroker options: ${detail}`);
  }
}

/** What opening the ledger found. */
export interface PaperBrokerOpenReport {
  /** Torn last lines (a crash mid-append) cut off, over the three files. */
  readonly tornLinesRemoved: number;
  readonly orders: number;
  readonly fills: number;
  readonly cancels: number;
  /** Files of ledger format 1 (no checksums, aistock before them) rewritten with a checksum on every line. */
  readonly filesUpgraded: number;
  /** Fills carried by order lines whose `fills` copy was missing (a crash, or a failed copy, between the two), written again. */
  readonly fillsRecopied: number;
}

/** The copies of fills order lines carry (see {@link PaperBroker.fillCopies}). */
export interface FillCopies {
  /** Copy writes that failed since open (each logged `BROKER_FILL_COPY_FAILED`). */
  readonly failed: number;
  /** Copies not written yet: tried again with the next fill, and by the next open at the latest. */
  readonly pending: number;
}

export type { LedgerFileKind };

/**
 * Fault injection, for tests: each switch makes the paper broker fail the way a real broker
 * or its disk does.
 */
export interface PaperBrokerFaults {
  /** Delay before every call over the connection is served, through the injected `sleep`. */
  latencyMs: number;
  /** The next `count` submits are rejected with `reason` (default `INJECTED_REJECTION`). */
  rejectNext(count?: number, reason?: BrokerRejectReason): void;
  /**
   * The next submit's reply is lost: whatever the broker did stands (the order placed and
   * filled, all on disk), then submit throws `BROKER_TIMEOUT`. Each call loses one more reply.
   */
  loseNextAck(): void;
  /** Every call throws `BROKER_DISCONNECTED` (nothing placed) until {@link reconnect}. */
  disconnect(): void;
  /** Ends {@link disconnect}. */
  reconnect(): void;
  readonly disconnected: boolean;
  /**
   * Ledger writes fail with errno `code` (default `EIO`): the next `times` of them (default:
   * until {@link healLedger}), only those of one `file` if given (`fills`: an order is
   * recorded but its fill is not, as a disk filling up between the two would do).
   */
  failLedgerWrites(code?: string, options?: { times?: number; file?: LedgerFileKind }): void;
  /** Ledger writes succeed again. */
  healLedger(): void;
}

/** The switches, with the methods the broker uses to consume them (not exported). */
class FaultSwitches implements PaperBrokerFaults {
  latencyMs: number;
  disconnected = false;
  #rejections: { remaining: number; reason: BrokerRejectReason } = { remaining: 0, reason: 'INJECTED_REJECTION' };
  #lostAcks = 0;
  #ledgerFailure: { code: string; remaining: number; file: LedgerFileKind | undefined } = { code: 'EIO', remaining: 0, file: undefined };

  constructor(latencyMs: number) {
    this.latencyMs = latencyMs;
  }

  rejectNext(count = 1, reason: BrokerRejectReason = 'INJECTED_REJECTION'): void {
    this.#rejections = { remaining: count, reason };
  }

  loseNextAck(): void {
    this.#lostAcks += 1;
  }

  disconnect(): void {
    this.disconnected = true;
  }

  reconnect(): void {
    this.disconnected = false;
  }

  failLedgerWrites(code = 'EIO', options: { times?: number; file?: LedgerFileKind } = {}): void {
    this.#ledgerFailure = { code, remaining: options.times ?? Number.POSITIVE_INFINITY, file: options.file };
  }

  healLedger(): void {
    this.#ledgerFailure = { code: 'EIO', remaining: 0, file: undefined };
  }

  takeRejection(): BrokerRejectReason | undefined {
    if (this.#rejections.remaining <= 0) return undefined;
    this.#rejections.remaining -= 1;
    return this.#rejections.reason;
  }

  takeLostAck(): boolean {
    if (this.#lostAcks <= 0) return false;
    this.#lostAcks -= 1;
    return true;
  }

  /** Called before each write to `file`: throws as the disk would. */
  checkLedgerWrite(file: LedgerFileKind): void {
    const failure = this.#ledgerFailure;
    if (failure.remaining <= 0 || (failure.file !== undefined && failure.file !== file)) return;
    failure.remaining -= 1;
    const { code } = failure;
    throw Object.assign(new Error(`${code}: injected ledger write failure`), { code });
  }
}

/** One order in the book. */
interface OrderRecord {
  readonly order: BrokerOrder;
  readonly receivedAt: number;
  readonly qty: Qty;
  readonly limitPrice: Price | undefined;
  /** The partial-fill plan: fill `k` takes `parts[k]` (or the rest, if less or past the plan). */
  readonly parts: readonly Qty[];
  readonly fills: Fill[];
  filled: Qty;
  status: BrokerOrderStatus;
  /** `ts` of the last bar the order was priced on: it fills only on bars after it. */
  lastBarTs: number;
  /** A fill or cancel of this order being written; nothing else touches it until it settles. */
  busy: Promise<unknown> | undefined;
}

interface Settings {
  readonly slippageBps: bigint;
  readonly commissionPerShare: Price;
  readonly minCommission: Money;
  readonly partialFillParts: number;
  readonly rejectDuplicateIds: boolean;
}

/** The PaperBroker (see the module comment). Create it with {@link PaperBroker.open}. */
export class PaperBroker implements Broker {
  /** Fault injection, for tests. */
  readonly faults: PaperBrokerFaults;
  readonly #faults: FaultSwitches;
  readonly #settings: Settings;
  readonly #clock: Clock;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #log: (entry: Record<string, unknown>) => void;
  readonly #ledger: PaperBrokerLedgerStore;
  /** Every order, in the order received. */
  readonly #orders: OrderRecord[] = [];
  /** The latest order with each client id. */
  readonly #byId = new Map<string, OrderRecord>();
  /** Ids whose order line is being written: taken, for the duplicate check. */
  readonly #placing = new Set<string>();
  /** Working orders per symbol, oldest first. */
  readonly #resting = new Map<string, OrderRecord[]>();
  readonly #positions = new Map<string, Qty>();
  readonly #lastBars = new Map<string, BrokerBar>();
  readonly #listeners = new Set<(fill: Fill) => void>();
  /** Fills carried by order lines whose fills.jsonl copy failed to be written: tried again. */
  readonly #uncopied: Fill[] = [];
  #copiesFailed = 0;
  #openReport: PaperBrokerOpenReport;
  /** Calls in progress, which close waits for. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  private constructor(parts: {
    settings: Settings;
    clock: Clock;
    sleep: (ms: number) => Promise<void>;
    log: (entry: Record<string, unknown>) => void;
    faults: FaultSwitches;
    ledger: PaperBrokerLedgerStore;
    openReport: PaperBrokerOpenReport;
  }) {
    this.#settings = parts.settings;
    this.#clock = parts.clock;
    this.#sleep = parts.sleep;
    this.#log = parts.log;
    this.#faults = parts.faults;
    this.faults = parts.faults;
    this.#ledger = parts.ledger;
    this.#openReport = parts.openReport;
  }

  /** What opening the ledger found. */
  get openReport(): PaperBrokerOpenReport {
    return this.#openReport;
  }

  /**
   * Opens the ledger — the files in `options.dir` (creating it), or the `ledger` store — cuts
   * off torn last lines, and rebuilds orders, fills and positions. Throws
   * {@link InvalidPaperBrokerOptionsError}, {@link BrokerLedgerCorruptError} (a whole line that
   * fails its checksum, its schema or the book's consistency), or {@link BrokerError}
   * `BROKER_LEDGER_FAILED` (the ledger cannot be read or opened).
   */
  static async open(options: PaperBrokerOptions): Promise<PaperBroker> {
    const { clock = systemClock, sleep = (ms: number) => delay(ms), log = () => undefined, ledger: given, ...rest } = options;
    const parsed = PaperBrokerSettingsSchema.safeParse(rest);
    if (!parsed.success) throw new InvalidPaperBrokerOptionsError(z.prettifyError(parsed.error));
    const { dir, slippageBps, commissionPerShare, minCommission, partialFills, rejectDuplicateIds, latencyMs, durability } = parsed.data;
    const ledger = given ?? (dir === undefined ? undefined : filePaperBrokerLedger(dir, diskSyncFor(durability)));
    if (ledger === undefined || (given !== undefined && dir !== undefined)) {
      throw new InvalidPaperBrokerOptionsError('give the ledger one home: dir (its files) or ledger (a store), not both or neither');
    }
    if (ledger.uniqueClientOrderIds && !rejectDuplicateIds) {
      throw new InvalidPaperBrokerOptionsError(`rejectDuplicateIds: false is not possible with the ledger in ${ledger.where}, which holds each client order id once`);
    }
    const settings: Settings = {
      slippageBps: parseBps(slippageBps),
      commissionPerShare: parsePrice(commissionPerShare),
      minCommission: parseMoney(minCommission),
      partialFillParts: partialFills?.parts ?? 1,
      rejectDuplicateIds,
    };
    const faults = new FaultSwitches(latencyMs);
    let records: LedgerRecords;
    try {
      records = await ledger.open();
    } catch (error) {
      await ledger.close().catch(() => undefined); // what it opened before failing; the error to report is the first
      if (error instanceof BrokerLedgerCorruptError) throw error;
      throw new BrokerError('BROKER_LEDGER_FAILED', `cannot open the paper broker ledger in ${ledger.where}: ${describeError(error)}`, { cause: error });
    }
    const broker = new PaperBroker({ settings, clock, sleep, log, faults, ledger, openReport: { fillsRecopied: 0, ...countsOf(records) } });
    try {
      const { interrupted, uncopied } = broker.#restore(records);
      // A market order whose fill line a crash cut off fills now, at the price it was given
      // (a ledger written before order lines carried their fill).
      if (interrupted.length > 0) await broker.#execute(interrupted);
      // Fills carried by their order lines whose copy a crash (or a failed copy) left out: copied now,
      // as copies (the order line vouches for each; a store that holds one copy per line keeps it once).
      await Promise.all(uncopied.map((fill) => ledger.copyFill(fill)));
      broker.#openReport = { ...broker.#openReport, fillsRecopied: uncopied.length };
    } catch (error) {
      await broker.close();
      throw error;
    }
    return broker;
  }

  /** The fill copies written behind their order lines: how many failed since open, how many wait. */
  fillCopies(): FillCopies {
    return { failed: this.#copiesFailed, pending: this.#uncopied.length };
  }

  submit(order: BrokerOrder): Promise<SubmitResult> {
    return this.#track(this.#submit(order));
  }

  cancel(clientOrderId: string): Promise<CancelResult> {
    return this.#track(this.#cancel(clientOrderId));
  }

  async openOrders(): Promise<BrokerOrderState[]> {
    await this.#call();
    return this.#orders.filter(isWorking).map(stateOf);
  }

  async positions(): Promise<Record<string, string>> {
    await this.#call();
    const positions = keyed<string>();
    for (const [symbol, qty] of this.#positions) positions[symbol] = formatQty(qty);
    return positions;
  }

  async orderByClientId(clientOrderId: string): Promise<BrokerOrderState | undefined> {
    await this.#call();
    const record = this.#byId.get(clientOrderId);
    return record === undefined ? undefined : stateOf(record);
  }

  async knownClientOrderIds(): Promise<string[]> {
    await this.#call();
    return [...this.#byId.keys()];
  }

  onFill(listener: (fill: Fill) => void): () => void {
    // A wrapper, so the same function subscribed twice is two subscriptions.
    const subscription = (fill: Fill): void => listener(fill);
    this.#listeners.add(subscription);
    return () => this.#listeners.delete(subscription);
  }

  /**
   * A bar of `bar.symbol` closed: it becomes the symbol's last price, and resting orders it
   * reaches fill (durably, then reported to `onFill` listeners). `undefined` when none does.
   * Rejects with `BROKER_LEDGER_FAILED` if a fill could not be written (that order keeps
   * resting), or with a listener's error after every fill was delivered.
   */
  observeBar(bar: BrokerBar): Promise<Fill[]> | undefined {
    if (this.#closing !== undefined) return undefined;
    this.#lastBars.set(bar.symbol, bar);
    const resting = this.#resting.get(bar.symbol);
    if (resting === undefined) return undefined;
    let batch: Array<{ record: OrderRecord; fill: Fill }> | undefined;
    for (const record of resting) {
      if (record.busy !== undefined || bar.ts <= record.lastBarTs) continue;
      const price = this.#restingFillPrice(record, bar);
      if (price !== undefined) (batch ??= []).push({ record, fill: this.#nextFill(record, price, bar.ts) });
    }
    if (batch === undefined) return undefined;
    return this.#track(this.#execute(batch).then(({ fills, failure }) => this.#deliver(fills, failure)));
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled(this.#inFlight);
      // Every append was acknowledged or failed already: a close that fails loses nothing, but is said.
      await this.#ledger.close().catch((error: unknown) => this.#log({ event: 'BROKER_LEDGER_CLOSE_FAILED', ledger: this.#ledger.where, error: describeError(error) }));
    })();
    return this.#closing;
  }

  async #submit(order: BrokerOrder): Promise<SubmitResult> {
    await this.#call(order.clientOrderId);
    const reply = this.#place(order);
    if (!this.#faults.takeLostAck()) return reply;
    // The broker did whatever it did; only the answer is lost.
    const outcome = await reply.then(
      (result) => result.status,
      (error: unknown) => describeError(error),
    );
    throw new BrokerError('BROKER_TIMEOUT', `no reply to submit of ${order.clientOrderId} (lost ack; the broker's outcome: ${outcome})`, {
      clientOrderId: order.clientOrderId,
    });
  }

  async #place(untrusted: BrokerOrder): Promise<SubmitResult> {
    const parsed = BrokerOrderSchema.safeParse(untrusted);
    if (!parsed.success) return rejected('INVALID_ORDER', z.prettifyError(parsed.error));
    const order = parsed.data;
    const injected = this.#faults.takeRejection();
    if (injected !== undefined) return rejected(injected, `${order.clientOrderId} rejected by faults.rejectNext`);
    const id = order.clientOrderId;
    if (this.#settings.rejectDuplicateIds && (this.#byId.has(id) || this.#placing.has(id))) {
      return rejected('DUPLICATE_CLIENT_ORDER_ID', `client order id ${id} was already received`);
    }
    const bar = this.#lastBars.get(order.symbol);
    if (order.type === 'market' && bar === undefined) {
      return rejected('NO_MARKET_PRICE', `no bar of ${order.symbol} observed yet: a market order needs a last price`);
    }
    const receivedAt = this.#clock.wallMs();
    const record = this.#newRecord(order, receivedAt, bar?.ts ?? Number.NEGATIVE_INFINITY);
    // A market order fills now, and its order line carries the fill: one durable append for both.
    const fill =
      order.type === 'market' && bar !== undefined
        ? this.#nextFill(record, takerPrice(parsePrice(bar.close), order.side, this.#settings.slippageBps), bar.ts)
        : undefined;
    this.#placing.add(id);
    let appended: OrderAppend;
    try {
      appended = await this.#write('orders', () => this.#ledger.appendOrder(orderLine(order, receivedAt, bar, fill)));
    } catch (error) {
      throw new BrokerError('BROKER_LEDGER_FAILED', `order ${id} not placed: ${describeError(error)}`, { clientOrderId: id, cause: error });
    } finally {
      this.#placing.delete(id);
    }
    // Placed by another broker on the same ledger (a holder taken over, still running): the
    // market's duplicate-id rule. The market holds that order, so this book does too, and a
    // lookup of the id finds it with its fill.
    if (appended.status === 'duplicate') {
      this.#log({ event: 'BROKER_DUPLICATE_ID', clientOrderId: id, ledger: this.#ledger.where });
      this.#adoptStored(appended.stored);
      return rejected('DUPLICATE_CLIENT_ORDER_ID', `client order id ${id} is already in the ledger (${this.#ledger.where})`);
    }
    this.#admit(record);
    if (fill === undefined) return { status: 'accepted', fills: [] };
    this.#applyFill(record, fill);
    this.#copyFills([fill]);
    return { status: 'accepted', fills: [fill] };
  }

  /**
   * Writes the `fills.jsonl` copies of fills their order lines carry, behind (no sync of their
   * own). A copy that cannot be written is tried again with the next fill, and at the latest
   * the next open writes it from its order line: the fill itself is durable either way.
   */
  #copyFills(fills: readonly Fill[]): void {
    const copies = [...this.#uncopied.splice(0), ...fills];
    for (const fill of copies) {
      this.#write('fills', () => this.#ledger.copyFill(fill)).catch((error: unknown) => {
        this.#uncopied.push(fill);
        this.#copiesFailed += 1;
        this.#log({ event: 'BROKER_FILL_COPY_FAILED', clientOrderId: fill.clientOrderId, ledger: this.#ledger.where, error: describeError(error), pending: this.#uncopied.length });
      });
    }
  }

  /** A ledger write of `kind`, failed first if `faults.failLedgerWrites` says so (as the disk would). */
  async #write<T>(kind: LedgerFileKind, write: () => Promise<T>): Promise<T> {
    this.#faults.checkLedgerWrite(kind);
    return write();
  }

  async #cancel(clientOrderId: string): Promise<CancelResult> {
    await this.#call(clientOrderId);
    const record = this.#byId.get(clientOrderId);
    if (record === undefined) return 'not_found';
    while (record.busy !== undefined) await record.busy;
    if (!isWorking(record)) return 'already_done';
    const write = this.#write('cancels', () => this.#ledger.appendCancel({ clientOrderId, cancelledAt: this.#clock.wallMs() }));
    record.busy = write.catch(() => undefined);
    try {
      await write;
    } catch (error) {
      throw new BrokerError('BROKER_LEDGER_FAILED', `cancel of ${clientOrderId} not recorded: ${describeError(error)}`, {
        clientOrderId,
        cause: error,
      });
    } finally {
      record.busy = undefined;
    }
    this.#markCancelled(record);
    return 'cancelled';
  }

  /** Writes fills (one group commit) and applies those that reached the disk. */
  async #execute(batch: ReadonlyArray<{ record: OrderRecord; fill: Fill }>): Promise<{ fills: Fill[]; failure: unknown }> {
    this.#copyFills([]);
    const writes = batch.map(({ record, fill }) => {
      const write = this.#write('fills', () => this.#ledger.appendFill(fill, record.fills.length));
      record.busy = write.catch(() => undefined);
      return write;
    });
    const outcomes = await Promise.allSettled(writes);
    const fills: Fill[] = [];
    let failure: unknown;
    batch.forEach(({ record, fill }, index) => {
      record.busy = undefined;
      const outcome = outcomes[index];
      if (outcome?.status === 'fulfilled') {
        // Already in the ledger (an earlier write's answer was lost, this bar wrote it again): the ledger's is the fill.
        const made = outcome.value.status === 'duplicate' ? outcome.value.stored : fill;
        if (made !== fill) this.#log({ event: 'BROKER_FILL_ALREADY_RECORDED', clientOrderId: fill.clientOrderId, ledger: this.#ledger.where });
        this.#applyFill(record, made);
        fills.push(made);
      } else {
        failure ??= outcome?.reason;
      }
    });
    return { fills, failure };
  }

  /** Reports durable fills to listeners, then fails if a write or a listener did. */
  #deliver(fills: Fill[], writeFailure: unknown): Fill[] {
    const listenerErrors: unknown[] = [];
    for (const fill of fills) {
      for (const listener of this.#listeners) {
        try {
          listener(fill);
        } catch (error) {
          listenerErrors.push(error);
        }
      }
    }
    if (writeFailure !== undefined) {
      throw new BrokerError('BROKER_LEDGER_FAILED', `a fill was not recorded (its order keeps resting): ${describeError(writeFailure)}`, {
        cause: writeFailure,
      });
    }
    if (listenerErrors.length > 0) throw listenerErrors[0];
    return fills;
  }

  /** An order's record, not in the book yet. */
  #newRecord(order: BrokerOrder, receivedAt: number, lastBarTs: number): OrderRecord {
    const qty = parseQty(order.qty);
    return {
      order,
      receivedAt,
      qty,
      limitPrice: order.type === 'limit' ? parsePrice(order.limitPrice) : undefined,
      parts: this.#settings.partialFillParts > 1 ? splitQty(order.qty, this.#settings.partialFillParts) : [qty],
      fills: [],
      filled: 0n,
      status: 'open',
      lastBarTs,
      busy: undefined,
    };
  }

  /** Adds an order to the book; `rest: false` leaves it out of the resting lists (restore adds them last). */
  /** An order line another broker wrote to this ledger, taken into the book as an open would (its carried fill applied, a limit order resting). */
  #adoptStored(line: OrderLine): void {
    if (this.#byId.has(line.clientOrderId)) return;
    const record = this.#admitLine(line);
    if (isWorking(record) && record.order.type === 'limit') this.#rest(record);
  }

  /** A ledger's order line in the book, not resting yet, with the fill it carries applied. */
  #admitLine(line: OrderLine): OrderRecord {
    const record = this.#admit(this.#newRecord(brokerOrderOf(line), line.receivedAt, Number.NEGATIVE_INFINITY), false);
    const fill = carriedFill(line);
    if (fill !== undefined) this.#applyFill(record, fill);
    return record;
  }

  #admit(record: OrderRecord, rest = true): OrderRecord {
    const { order } = record;
    this.#orders.push(record);
    this.#byId.set(order.clientOrderId, record);
    if (rest) this.#rest(record);
    return record;
  }

  #rest(record: OrderRecord): void {
    const resting = this.#resting.get(record.order.symbol);
    if (resting === undefined) this.#resting.set(record.order.symbol, [record]);
    else resting.push(record);
  }

  /** The next part of `record` at `price`, on the bar starting at `barTs`. */
  #nextFill(record: OrderRecord, price: Price, barTs: number): Fill {
    const remaining = record.qty - record.filled;
    const part = record.parts[record.fills.length] ?? remaining;
    const qty = part < remaining ? part : remaining;
    const { clientOrderId, symbol, side } = record.order;
    return {
      clientOrderId,
      symbol,
      side,
      qty: formatQty(qty),
      price: formatPrice(price),
      commission: formatMoneyExact(commissionFor(qty, this.#settings.commissionPerShare, this.#settings.minCommission)),
      filledAt: barTs,
    };
  }

  /** Where a resting order fills on `bar`, or `undefined` if the bar does not reach it. */
  #restingFillPrice(record: OrderRecord, bar: BrokerBar): Price | undefined {
    const { side } = record.order;
    if (record.limitPrice === undefined) return takerPrice(parsePrice(bar.open), side, this.#settings.slippageBps);
    const tradedThrough = side === 'buy' ? parsePrice(bar.low) < record.limitPrice : parsePrice(bar.high) > record.limitPrice;
    return tradedThrough ? record.limitPrice : undefined;
  }

  #applyFill(record: OrderRecord, fill: Fill): void {
    const qty = parseQty(fill.qty);
    record.filled += qty;
    record.fills.push(fill);
    record.lastBarTs = Math.max(record.lastBarTs, fill.filledAt);
    if (record.status !== 'cancelled') record.status = record.filled === record.qty ? 'filled' : 'partially_filled';
    const position = (this.#positions.get(fill.symbol) ?? 0n) + sideSign(fill.side) * qty;
    if (position === 0n) this.#positions.delete(fill.symbol);
    else this.#positions.set(fill.symbol, position);
    if (!isWorking(record)) this.#unrest(record);
  }

  #markCancelled(record: OrderRecord): void {
    record.status = 'cancelled';
    this.#unrest(record);
  }

  #unrest(record: OrderRecord): void {
    const resting = this.#resting.get(record.order.symbol);
    if (resting === undefined) return;
    const index = resting.indexOf(record);
    if (index >= 0) resting.splice(index, 1);
    if (resting.length === 0) this.#resting.delete(record.order.symbol);
  }

  /** Rebuilds the book from the ledger; a line that contradicts the others is corruption. */
  #restore({ orders, fills, cancels }: LedgerRecords): { interrupted: { record: OrderRecord; fill: Fill }[]; uncopied: Fill[] } {
    // Orders by client id, oldest first (more than one only without rejectDuplicateIds).
    const ordersById = new Map<string, OrderRecord[]>();
    const pricedOn = new Map<OrderRecord, { ts: number; close: string }>();
    const carried = carriedFills(orders, fills);
    for (const line of orders) {
      const priced =
        line.type === 'market' && line.pricedAt !== undefined && line.pricedClose !== undefined
          ? { ts: line.pricedAt, close: line.pricedClose }
          : undefined;
      const record = this.#admitLine(line);
      if (record.fills.length === 0 && priced !== undefined) pricedOn.set(record, priced);
      const sameId = ordersById.get(line.clientOrderId);
      if (sameId === undefined) ordersById.set(line.clientOrderId, [record]);
      else sameId.push(record);
    }
    fills.forEach((fill, index) => {
      // The copy of a fill its order line carries: applied with its order.
      if (carried.copyLines.has(index)) return;
      const problem = this.#restoreFill(ordersById.get(fill.clientOrderId) ?? [], fill);
      if (problem !== undefined) throw new BrokerLedgerCorruptError(this.#ledger.locate('fills'), index + 1, 'INCONSISTENT', problem);
    });
    cancels.forEach((cancel, index) => {
      const record = ordersById.get(cancel.clientOrderId)?.findLast(isWorking);
      if (record === undefined) {
        throw new BrokerLedgerCorruptError(this.#ledger.locate('cancels'), index + 1, 'INCONSISTENT', `a cancel of ${cancel.clientOrderId}, which has no working order`);
      }
      this.#markCancelled(record);
    });
    const interrupted: { record: OrderRecord; fill: Fill }[] = [];
    for (const record of this.#orders) {
      const priced = pricedOn.get(record);
      if (priced !== undefined && record.fills.length === 0 && isWorking(record)) {
        const price = takerPrice(parsePrice(priced.close), record.order.side, this.#settings.slippageBps);
        interrupted.push({ record, fill: this.#nextFill(record, price, priced.ts) });
      }
      if (isWorking(record)) this.#rest(record);
    }
    return { interrupted, uncopied: carried.uncopied };
  }

  /**
   * Gives a fill read from the ledger to its order, or says why it cannot belong to any. When
   * the id names several orders (duplicates accepted), the ledger does not say which one a
   * fill was for: it goes to them first in, first out, split where it exceeds one's rest.
   */
  #restoreFill(sameId: readonly OrderRecord[], fill: Fill): string | undefined {
    if (sameId.length === 0) return `a fill of ${fill.clientOrderId}, which has no order in ${this.#ledger.locate('orders')}`;
    const candidates = sameId.filter((record) => record.order.symbol === fill.symbol && record.order.side === fill.side && isWorking(record));
    const unfilled = candidates.reduce((sum, record) => sum + record.qty - record.filled, 0n);
    const total = parseQty(fill.qty);
    if (total > unfilled) {
      return `a fill of ${fill.qty} ${fill.side} ${fill.symbol} of ${fill.clientOrderId}, more than the ${formatQty(unfilled)} its orders have unfilled`;
    }
    let rest = total;
    for (const record of candidates) {
      if (rest === 0n) break;
      const take = min(rest, record.qty - record.filled);
      // Split over same-id orders, a fill keeps its commission with its first part.
      this.#applyFill(record, take === total ? fill : { ...fill, qty: formatQty(take), commission: rest === total ? fill.commission : '0' });
      rest -= take;
    }
    return undefined;
  }

  /** Every call over the connection: refused while closed or disconnected, then the latency. */
  async #call(clientOrderId?: string): Promise<void> {
    this.#assertReachable(clientOrderId);
    const { latencyMs } = this.#faults;
    if (latencyMs > 0) {
      await this.#sleep(latencyMs);
      this.#assertReachable(clientOrderId);
    }
  }

  #assertReachable(clientOrderId: string | undefined): void {
    if (this.#closing !== undefined) throw new BrokerError('BROKER_CLOSED', 'the paper broker is closed', { clientOrderId });
    if (this.#faults.disconnected) {
      throw new BrokerError('BROKER_DISCONNECTED', 'the paper broker is disconnected (faults.disconnect)', { clientOrderId });
    }
  }

  /** Keeps `operation` in the set close waits for, until it settles. */
  #track<T>(operation: Promise<T>): Promise<T> {
    this.#inFlight.add(operation);
    const settled = (): void => void this.#inFlight.delete(operation);
    operation.then(settled, settled);
    return operation;
  }
}

/** The ledger line of an order, keys in DESIGN.md's order (a limit price last, a market order's fill at submit last). */
function orderLine(order: BrokerOrder, receivedAt: number, bar: BrokerBar | undefined, fill: Fill | undefined): OrderLine {
  const { clientOrderId, symbol, side, qty } = order;
  if (order.type === 'limit') return { clientOrderId, symbol, side, qty, type: 'limit', receivedAt, limitPrice: order.limitPrice };
  const priced = bar === undefined ? {} : { pricedAt: bar.ts, pricedClose: formatPrice(fromNumber(bar.close, PRICE_DECIMALS)) };
  const carried = fill === undefined ? {} : { fill: { qty: fill.qty, price: fill.price, commission: fill.commission } };
  return { clientOrderId, symbol, side, qty, type: 'market', receivedAt, ...priced, ...carried };
}


/** The order an `orders.jsonl` line describes, without the ledger's own fields. */
function brokerOrderOf(line: OrderLine): BrokerOrder {
  const { clientOrderId, symbol, side, qty } = line;
  return line.type === 'limit'
    ? { clientOrderId, symbol, side, qty, type: 'limit', limitPrice: line.limitPrice }
    : { clientOrderId, symbol, side, qty, type: 'market' };
}

/** What the ledger held at open, for the open report. */
function countsOf(records: LedgerRecords): Omit<PaperBrokerOpenReport, 'fillsRecopied'> {
  const { tornLinesRemoved, filesUpgraded } = records;
  return { tornLinesRemoved, filesUpgraded, orders: records.orders.length, fills: records.fills.length, cancels: records.cancels.length };
}

function rejected(reason: BrokerRejectReason, detail: string): SubmitResult {
  return { status: 'rejected', reason, detail };
}

function isWorking(record: OrderRecord): boolean {
  return record.status === 'open' || record.status === 'partially_filled';
}

function stateOf(record: OrderRecord): BrokerOrderState {
  return {
    order: { ...record.order },
    status: record.status,
    filledQty: formatQty(record.filled),
    fills: [...record.fills],
    receivedAt: record.receivedAt,
  };
}
