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

const clock = new ManualClock({ wallMs: Date.UTC(2025, 0, 2, 14, 30) });
const HEADER = `{"journal":"aistock/orders","schemaVersion":1,"createdAt":${clock.wallMs()}}\n`;
const line = (record: JournalRecord): string => `${JSON.stringify(record)}\n`;
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
    expect(await journal.load()).toEqual({ status: 'ok', records: [], tornTail: null, created: true });
    expect(await readFile(path, 'utf8')).toBe(HEADER);
  });

  it('loads back every record appended, in order', async () => {
    await journal.load();
    const records: JournalRecord[] = [reserved('A'), reserved('B'), { clockSkewMs: -5_000, at: 1 }, { id: 'A', state: 'submitted', at: 2 }];
    await journal.append(records.slice(0, 2));
    await journal.append(records.slice(2));
    expect(await (await reopen()).load()).toEqual({ status: 'ok', records, tornTail: null, created: false });
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
    ['garbage in the middle', HEADER + line(reserved('A')) + 'garbage\n' + line(reserved('B')), 'INVALID_LINE', 3],
    ['a record that fails the schema', HEADER + line(reserved('A')) + '{"id":"A B","state":"reserved","at":1}\n', 'INVALID_LINE', 3],
    ['another schema version', HEADER.replace('"schemaVersion":1', '"schemaVersion":2') + line(reserved('A')), 'WRONG_VERSION', 1],
    ['a file that is not an order journal', '{"cash":"100"}\n', 'INVALID_HEADER', 1],
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
    `{"id":${JSON.stringify(id)},"state":${JSON.stringify(state)},"at":${at}}\n`;
  const reorderedLine = ({ id, state, at }: { id: string; state: string; at: string }): string =>
    `{"at":${at},"state":${JSON.stringify(state)},"id":${JSON.stringify(id)}}\n`;

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
    const noted = Array.from({ length: 2_000 }, (_, n) => `{"id":"ID-${n}","state":"submitted","at":${n},"note":"€ ${n} 日本"}\n`).join('');
    const clean = await loadText(noted);
    expect(clean).toMatchObject({ status: 'ok', records: Array.from({ length: 2_000 }, (_, n) => ({ id: `ID-${n}`, state: 'submitted', at: n })) });
    const bad = await loadText(`${noted}{"id":"ID-X","note":"€ 日本","state":"filled","at":1}\n`);
    expect(bad).toMatchObject({ status: 'corrupt', reason: 'INVALID_LINE', line: 2_002, detail: expect.stringContaining('€ 日本') });
  });

  it('names the first bad line after thousands of canonical ones', async () => {
    const good = Array.from({ length: 5_000 }, (_, n) => line({ id: `ID-${n}`, state: 'submitted', at: 1_735_828_200_000.25 + n })).join('');
    const load = await loadText(`${good}{"id":"ID-X","state":"submitted","at":1e999}\n${line(reserved('LAST'))}`);
    expect(load).toMatchObject({ status: 'corrupt', reason: 'INVALID_LINE', line: 5_002 });
  });
});
