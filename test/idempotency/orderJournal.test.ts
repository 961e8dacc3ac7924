import fc from 'fast-check';
import { appendFile, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../src/idempotency/idempotency.js';
import { ManualClock } from '../../src/common/clock.js';
import {
  FileOrderJournal,
  JournalClosedError,
  type JournalLoad,
  JournalReadError,
  JournalWriteError,
  ORDER_JOURNAL_FILE,
} from '../../src/idempotency/orderJournal.js';
import { errnoError } from '../../src/testing/faultyWriter.js';
import { withChecksum } from '../../src/stateDir/lineChecksum.js';

const clock = new ManualClock({ wallMs: Date.UTC(2025, 0, 2, 14, 30) });
const headerOf = (schemaVersion: number): string => `{"journal":"aistock/orders","schemaVersion":${schemaVersion},"createdAt":${clock.wallMs()}}`;
const HEADER = `${withChecksum(headerOf(2))}\n`;
/** A line as the journal writes it: the record's JSON, then its checksum. */
const line = (record: JournalRecord): string => `${withChecksum(JSON.stringify(record))}\n`;
/** The same record as the journal wrote it before checksums (schema version 1). */
const uncheckedLine = (record: JournalRecord): string => `${JSON.stringify(record)}\n`;
const UNCHECKED_HEADER = `${headerOf(1)}\n`;
const reserved = (id: string): JournalRecord => ({ id, state: 'reserved', at: clock.wallMs() });

let dir: string;
let path: string;
let journal: FileOrderJournal;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aistock-journal-'));
  path = join(dir, ORDER_JOURNAL_FILE);
  journal = new FileOrderJournal({ path, clock });
});

afterEach(async () => {
  await journal.close();
});

async function reopen(): Promise<FileOrderJournal> {
  await journal.close();
  journal = new FileOrderJournal({ path, clock });
  return journal;
}

/** A promise the test resolves: holds a write in flight. */
function gate(): { wait: () => Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { wait: () => opened, open };
}

describe('the order journal file', () => {
  it('starts a journal with just a header when there is none', async () => {
    expect(await journal.load()).toEqual({ status: 'ok', records: [], tornTail: null, created: true, upgradedFrom: null });
    expect(await readFile(path, 'utf8')).toBe(HEADER);
  });

  it('loads back every record appended, in order', async () => {
    await journal.load();
    const records: JournalRecord[] = [reserved('A'), reserved('B'), { clockSkewMs: -5_000, at: 1 }, { id: 'A', state: 'submitted', at: 2 }];
    await journal.append(records.slice(0, 2));
    await journal.append(records.slice(2));
    expect(await (await reopen()).load()).toEqual({ status: 'ok', records, tornTail: null, created: false, upgradedFrom: null });
  });

  // The audit's case: SIGKILL in the middle of an append leaves half a line.
  it('cuts off a torn last line, reports it, and goes on appending after it', async () => {
    const intact = HEADER + line(reserved('A'));
    await writeFile(path, `${intact}{"id":"B","sta`);
    const load = await journal.load();
    expect(load).toMatchObject({
      status: 'ok',
      records: [reserved('A')],
      tornTail: { offset: Buffer.byteLength(intact), bytes: 14, preview: '{"id":"B","sta' },
    });
    expect(await readFile(path, 'utf8')).toBe(intact);
    await journal.append([reserved('C')]);
    const reload = await (await reopen()).load();
    expect(reload).toMatchObject({ status: 'ok', records: [reserved('A'), reserved('C')], tornTail: null });
  });

  it('starts afresh when the process died while writing the header', async () => {
    await writeFile(path, HEADER.slice(0, 20));
    expect(await journal.load()).toMatchObject({ status: 'ok', records: [], created: true, tornTail: { offset: 0, bytes: 20 } });
    expect(await readFile(path, 'utf8')).toBe(HEADER);
  });

  it.each([
    ['garbage in the middle', HEADER + line(reserved('A')) + 'garbage\n' + line(reserved('B')), 'CHECKSUM_MISMATCH', 3],
    ['a record written by hand, without its checksum', HEADER + line(reserved('A')) + uncheckedLine(reserved('B')), 'CHECKSUM_MISMATCH', 3],
    ['a record that fails the schema', HEADER + line(reserved('A')) + `${withChecksum('{"id":"A B","state":"reserved","at":1}')}\n`, 'INVALID_LINE', 3],
    ['another schema version', `${withChecksum(headerOf(3))}\n${line(reserved('A'))}`, 'WRONG_VERSION', 1],
    ['a version 2 header without its checksum', `${headerOf(2)}\n${line(reserved('A'))}`, 'CHECKSUM_MISMATCH', 1],
    ['a file that is not an order journal', '{"cash":"100"}\n', 'INVALID_HEADER', 1],
    ['a bad line in a version 1 journal', UNCHECKED_HEADER + uncheckedLine(reserved('A')) + 'garbage\n', 'INVALID_LINE', 3],
  ])('sets aside a journal with %s and starts a fresh one', async (_name, contents, reason, badLine) => {
    await writeFile(path, contents);
    const load = await journal.load();
    expect(load).toMatchObject({ status: 'corrupt', reason, line: badLine, movedTo: `${path}.corrupt-20250102T143000000Z` });
    if (load.status !== 'corrupt') throw new Error('expected corrupt');
    expect(await readFile(load.movedTo, 'utf8')).toBe(contents);
    expect(await readFile(path, 'utf8')).toBe(HEADER);
    await journal.append([reserved('C')]);
    expect(await (await reopen()).load()).toMatchObject({ status: 'ok', records: [reserved('C')] });
  });

  it('throws a typed read error when the journal cannot be read at all', async () => {
    await mkdir(path);
    await expect(journal.load()).rejects.toBeInstanceOf(JournalReadError);
  });
});

describe('checksums', () => {
  // Line 3 is the one damaged: an entry read by the fast path, between a clock-skew record and
  // an entry with another key order (both read by the full path).
  const skew: JournalRecord = { clockSkewMs: -5_000, at: 1 };
  const target = line({ id: 'AAPL-m5ffaj40-b64b40b001fc58', state: 'submitted', at: 1_735_828_200_000.5 });
  const reordered = `${withChecksum('{"at":7,"state":"reserved","id":"LAST"}')}\n`;
  const intact = HEADER + line(skew) + target + reordered;
  const targetStart = Buffer.byteLength(HEADER + line(skew));

  /** Loads `bytes` with a fresh journal of its own; closes it. */
  async function loadBytes(bytes: Buffer | string): Promise<JournalLoad> {
    const file = join(dir, `flipped-${Math.random().toString(36).slice(2)}`);
    await writeFile(file, bytes);
    const own = new FileOrderJournal({ path: file, clock });
    try {
      return await own.load();
    } finally {
      await own.close();
    }
  }

  it('loads an intact journal with checksums on every line, the header included', async () => {
    expect(await loadBytes(intact)).toMatchObject({
      status: 'ok',
      records: [skew, { id: 'AAPL-m5ffaj40-b64b40b001fc58', state: 'submitted', at: 1_735_828_200_000.5 }, { id: 'LAST', state: 'reserved', at: 7 }],
      tornTail: null,
    });
  });

  // Every byte of the line — the record's keys and values, the checksum's key, its hex digits,
  // the closing brace, the newline — flipped in turn, by one bit and by the high bit.
  it.each([
    ['0x01', 0x01],
    ['0x80', 0x80],
  ])('names line 3 CHECKSUM_MISMATCH for a flip (xor %s) of any one of its bytes, and sets the journal aside', async (_name, mask) => {
    const verdicts = new Map<string, number[]>();
    for (let offset = 0; offset < Buffer.byteLength(target); offset += 1) {
      const bytes = Buffer.from(intact);
      bytes[targetStart + offset] = (bytes[targetStart + offset] ?? 0) ^ mask;
      const load = await loadBytes(bytes);
      const verdict = load.status === 'corrupt' ? `${load.reason} line ${load.line}` : `${load.status}`;
      verdicts.set(verdict, [...(verdicts.get(verdict) ?? []), offset]);
    }
    expect([...verdicts.keys()]).toEqual(['CHECKSUM_MISMATCH line 3']);
  });

  it('says which checksum the line carries and which its bytes give', async () => {
    const bytes = Buffer.from(intact);
    const digit = targetStart + target.indexOf('1735828200000');
    bytes[digit + 3] = '9'.charCodeAt(0); // one price-like digit edited: 1735… becomes 1739…
    const load = await loadBytes(bytes);
    expect(load).toMatchObject({ status: 'corrupt', reason: 'CHECKSUM_MISMATCH', line: 3 });
    if (load.status !== 'corrupt') throw new Error('expected corrupt');
    expect(load.detail).toMatch(/^CRC-32 [0-9a-f]{8} of the line's bytes, but it says [0-9a-f]{8}: "\{\\"id\\":\\"AAPL-/);
  });

  it('never reads a header with a flipped byte as a journal: the flip is a checksum mismatch or an invalid header', async () => {
    const reasons = new Set<string>();
    for (let offset = 0; offset < Buffer.byteLength(HEADER) - 1; offset += 1) {
      const bytes = Buffer.from(intact);
      bytes[offset] = (bytes[offset] ?? 0) ^ 0x01;
      const load = await loadBytes(bytes);
      expect(load, `byte ${offset}`).toMatchObject({ status: 'corrupt', line: 1 });
      if (load.status === 'corrupt') reasons.add(load.reason);
    }
    // A flipped version digit (2 → 3) is a checksum mismatch, not another version.
    expect([...reasons].sort()).toEqual(['CHECKSUM_MISMATCH', 'INVALID_HEADER']);
  });

  it('cuts a torn final line as a torn tail, never a checksum error, wherever it was cut', async () => {
    const body = HEADER + line(skew) + target;
    for (const keep of [1, 20, target.length - 12, target.length - 1]) {
      const load = await loadBytes(HEADER + line(skew) + target.slice(0, keep));
      expect(load, `kept ${keep}`).toMatchObject({ status: 'ok', records: [skew], tornTail: { bytes: keep } });
    }
    expect(await loadBytes(body)).toMatchObject({ status: 'ok', tornTail: null });
  });
});

describe('a journal of schema version 1 (before checksums)', () => {
  it('is read without checksums and rewritten in version 2, records and all', async () => {
    const records: JournalRecord[] = [reserved('A'), { clockSkewMs: 3_000, at: 2 }, { id: 'A', state: 'submitted', at: 3 }];
    await writeFile(path, UNCHECKED_HEADER + records.map(uncheckedLine).join('') + '{"id":"B","st');
    expect(await journal.load()).toEqual({ status: 'ok', records, tornTail: expect.objectContaining({ bytes: 13 }), created: false, upgradedFrom: 1 });
    expect(await readFile(path, 'utf8')).toBe(HEADER + records.map(line).join(''));
    await journal.append([reserved('C')]);
    expect(await (await reopen()).load()).toEqual({ status: 'ok', records: [...records, reserved('C')], tornTail: null, created: false, upgradedFrom: null });
    expect((await readdir(dir)).sort()).toEqual([ORDER_JOURNAL_FILE]);
  });

  it('keeps the version 1 journal as it was when the rewrite fails, and says so', async () => {
    const contents = UNCHECKED_HEADER + uncheckedLine(reserved('A'));
    await writeFile(path, contents);
    journal.faults.beforeWrite = () => {
      throw errnoError('ENOSPC', path);
    };
    await expect(journal.load()).rejects.toMatchObject({ code: 'JOURNAL_WRITE_FAILED', retryable: true });
    expect(await readFile(path, 'utf8')).toBe(contents);
  });
});

describe('group commit', () => {
  it('writes appends made in one tick with one sync', async () => {
    await journal.load();
    await Promise.all(Array.from({ length: 10 }, (_, n) => journal.append([reserved(`ID${n}`)])));
    expect(journal.stats()).toMatchObject({ appends: 10, syncs: 1 });
  });

  it('lets appends that arrive while a write is in flight share the next sync', async () => {
    await journal.load();
    const held = gate();
    let writes = 0;
    journal.faults.beforeWrite = async () => {
      writes += 1;
      if (writes === 1) await held.wait();
    };
    const first = journal.append([reserved('FIRST')]);
    await new Promise((resolve) => setImmediate(resolve)); // the first write is now in flight
    const settled: string[] = [];
    const later = Array.from({ length: 7 }, (_, n) => journal.append([reserved(`LATER${n}`)]).then(() => settled.push(`LATER${n}`)));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toEqual([]);
    held.open();
    await Promise.all([first, ...later]);
    expect(journal.stats()).toMatchObject({ appends: 8, syncs: 2 });
    const text = await readFile(path, 'utf8');
    expect(text.split('\n').filter((row) => row.includes('LATER'))).toHaveLength(7);
  });

  it('fails every append of a failed write, and cuts what it left before the next one', async () => {
    await journal.load();
    journal.faults.afterWrite = () => {
      journal.faults.afterWrite = undefined;
      throw errnoError('EIO', path, 'fsync');
    };
    const failed = await Promise.allSettled([journal.append([reserved('LOST1')]), journal.append([reserved('LOST2')])]);
    for (const result of failed) {
      expect(result.status).toBe('rejected');
      if (result.status === 'rejected') expect(result.reason).toMatchObject({ code: 'JOURNAL_WRITE_FAILED', retryable: true });
    }
    await journal.append([reserved('KEPT')]);
    expect(journal.stats()).toMatchObject({ syncs: 1, failedSyncs: 1 });
    const load = await (await reopen()).load();
    expect(load).toMatchObject({ status: 'ok', records: [reserved('KEPT')] });
  });

  it('fails an append whose write fails before any byte is written', async () => {
    await journal.load();
    journal.faults.beforeWrite = () => {
      throw errnoError('ENOSPC', path);
    };
    await expect(journal.append([reserved('A')])).rejects.toBeInstanceOf(JournalWriteError);
    expect(await readFile(path, 'utf8')).toBe(HEADER);
  });
});

describe('compaction and closing', () => {
  it('atomically replaces the journal with the live records, then appends after them', async () => {
    await journal.load();
    await journal.append(['A', 'B', 'C'].map(reserved));
    await journal.append([{ id: 'A', state: 'submitted', at: 1 }, { clockSkewMs: -5_000, at: 2 }]);
    await journal.compact([{ id: 'B', state: 'reserved', at: 3 }]);
    await journal.append([reserved('D')]);
    expect(await readFile(path, 'utf8')).toBe(HEADER + line({ id: 'B', state: 'reserved', at: 3 }) + line(reserved('D')));
    expect(journal.stats().compactions).toBe(1);
    expect((await readdir(dir)).sort()).toEqual([ORDER_JOURNAL_FILE]);
  });

  it('keeps the old journal whole when the compaction write fails', async () => {
    await journal.load();
    await journal.append([reserved('A')]);
    const before = await readFile(path, 'utf8');
    journal.faults.beforeWrite = () => {
      throw errnoError('ENOSPC', path);
    };
    await expect(journal.compact([])).rejects.toMatchObject({ code: 'JOURNAL_COMPACTION_FAILED' });
    journal.faults.beforeWrite = undefined;
    expect(await readFile(path, 'utf8')).toBe(before);
    await journal.append([reserved('B')]);
    expect(await (await reopen()).load()).toMatchObject({ status: 'ok', records: [reserved('A'), reserved('B')] });
  });

  it('writes what was appended before close, and refuses appends after it', async () => {
    await journal.load();
    const pending = journal.append([reserved('LAST')]);
    const closed = journal.close();
    await Promise.all([pending, closed]);
    expect(await readFile(path, 'utf8')).toBe(HEADER + line(reserved('LAST')));
    await expect(journal.append([reserved('LATE')])).rejects.toBeInstanceOf(JournalClosedError);
    expect(journal.close()).toBe(closed);
  });

  it('refuses appends before it is loaded', async () => {
    await expect(journal.append([reserved('EARLY')])).rejects.toBeInstanceOf(JournalClosedError);
  });

  it('survives records appended by hand after the last newline only as a torn tail', async () => {
    await journal.load();
    await journal.append([reserved('A')]);
    await appendFile(path, '{"id":"B"');
    expect(await (await reopen()).load()).toMatchObject({ status: 'ok', records: [reserved('A')], tornTail: { bytes: 9 } });
  });
});

describe('reading entry lines', () => {
  // A line written as JSON.stringify writes an entry ({"id","state","at"}) is read by a fast
  // path; the same fields in another key order always go through JSON.parse and zod. Whatever
  // the fields hold, both must load the same records, or find the same bad line.
  const idText = fc.oneof(fc.stringMatching(/^[A-Za-z0-9-]{1,32}$/), fc.string({ maxLength: 40 }));
  const stateText = fc.constantFrom('reserved', 'submitted', 'rejected', 'unknown', 'released', 'filled', 'Reserved', '');
  const atText = fc.oneof(
    fc.double().map((at) => JSON.stringify(at)),
    fc.integer().map(String),
    fc.constantFrom('-0', '01', '-01', '1.', '.5', '1e5', '1E+5', '2e-3', '1.25e-7', '-', '1e999', '-1e999', '0.0', '1.5e', 'true', '"1"', '1_000'),
  );
  const entry = fc.record({ id: idText, state: stateText, at: atText });
  const canonicalLine = ({ id, state, at }: { id: string; state: string; at: string }): string =>
    `${withChecksum(`{"id":${JSON.stringify(id)},"state":${JSON.stringify(state)},"at":${at}}`)}\n`;
  const reorderedLine = ({ id, state, at }: { id: string; state: string; at: string }): string =>
    `${withChecksum(`{"at":${at},"state":${JSON.stringify(state)},"id":${JSON.stringify(id)}}`)}\n`;

  let run = 0;
  async function loadText(body: string): Promise<JournalLoad> {
    run += 1;
    const file = new FileOrderJournal({ path: join(dir, `journal-${run}`), clock });
    await writeFile(join(dir, `journal-${run}`), HEADER + body);
    try {
      return await file.load();
    } finally {
      await file.close();
    }
  }
  const verdict = (load: JournalLoad) =>
    load.status === 'ok' ? { status: load.status, records: load.records } : { status: load.status, reason: load.reason, line: load.line };

  it('reads a line the same whether it is written canonically or with its keys in another order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 4 }), async (entries) => {
        const fast = await loadText(entries.map(canonicalLine).join(''));
        const full = await loadText(entries.map(reorderedLine).join(''));
        expect(verdict(fast)).toEqual(verdict(full));
      }),
      { numRuns: 150 },
    );
  });

  it('reads multi-byte text across the chunks it decodes, and quotes it in a bad line', async () => {
    // Unknown keys are allowed (and dropped), so these lines are valid but never canonical.
    const noted = Array.from({ length: 2_000 }, (_, n) => `${withChecksum(`{"id":"ID-${n}","state":"submitted","at":${n},"note":"€ ${n} 日本"}`)}\n`).join('');
    const clean = await loadText(noted);
    expect(clean).toMatchObject({ status: 'ok', records: Array.from({ length: 2_000 }, (_, n) => ({ id: `ID-${n}`, state: 'submitted', at: n })) });
    const bad = await loadText(`${noted}${withChecksum('{"id":"ID-X","note":"€ 日本","state":"filled","at":1}')}\n`);
    expect(bad).toMatchObject({ status: 'corrupt', reason: 'INVALID_LINE', line: 2_002, detail: expect.stringContaining('€ 日本') });
  });

  it('names the first bad line after thousands of canonical ones', async () => {
    const good = Array.from({ length: 5_000 }, (_, n) => line({ id: `ID-${n}`, state: 'submitted', at: 1_735_828_200_000.25 + n })).join('');
    const load = await loadText(`${good}${withChecksum('{"id":"ID-X","state":"submitted","at":1e999}')}\n${line(reserved('LAST'))}`);
    expect(load).toMatchObject({ status: 'corrupt', reason: 'INVALID_LINE', line: 5_002 });
    // A canonical line whose checksum fails is named too, not passed on by the fast path.
    const edited = line({ id: 'ID-X', state: 'submitted', at: 1 }).replace('"at":1', '"at":2');
    expect(await loadText(`${good}${edited}${line(reserved('LAST'))}`)).toMatchObject({ status: 'corrupt', reason: 'CHECKSUM_MISMATCH', line: 5_002 });
  });

  it('reads a multi-byte line of a version 1 journal and its canonical lines alike', async () => {
    const file = join(dir, 'journal-v1');
    await writeFile(file, `${UNCHECKED_HEADER}${uncheckedLine(reserved('A'))}{"id":"B","state":"reserved","at":1,"note":"€"}\n`);
    const own = new FileOrderJournal({ path: file, clock });
    try {
      expect(await own.load()).toMatchObject({ status: 'ok', records: [reserved('A'), { id: 'B', state: 'reserved', at: 1 }], upgradedFrom: 1 });
    } finally {
      await own.close();
    }
  });
});
