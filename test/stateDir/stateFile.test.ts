import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ManualClock } from '../../src/common/clock.js';
import { moveAside, readStateFile, StateFileError, writeStateFile } from '../../src/stateDir/stateFile.js';
import { FaultyWriter } from '../../src/testing/faultyWriter.js';

const format = { schema: z.object({ cash: z.string(), orders: z.number().int() }), schemaVersion: 2 };
const clock = new ManualClock({ wallMs: Date.UTC(2025, 10, 2, 6, 30) });
let dir: string;
let path: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aistock-statefile-'));
  path = join(dir, 'checkpoint.json');
});

describe('state files', () => {
  it('round-trips data in a versioned envelope', async () => {
    await writeStateFile(path, { cash: '100.25', orders: 3 }, format, clock);
    const raw = JSON.parse(await readFile(path, 'utf8'));
    expect(raw).toEqual({ schemaVersion: 2, savedAt: clock.wallMs(), data: { cash: '100.25', orders: 3 } });
    expect(await readStateFile(path, format, clock)).toEqual({
      status: 'ok',
      data: { cash: '100.25', orders: 3 },
      savedAt: clock.wallMs(),
    });
  });

  it('reports a missing file as missing, not as an error', async () => {
    expect(await readStateFile(path, format, clock)).toEqual({ status: 'missing' });
  });

  it.each([
    ['a truncated file', '{"schemaVersion":2,"savedAt":1,"data":{"cash":"1', 'UNPARSABLE'],
    ['a file of garbage', '\u0000\u0001garbage\ufffd', 'UNPARSABLE'],
    ['an empty file', '', 'UNPARSABLE'],
    ['a file that is not an envelope', '{"cash":"1","orders":2}', 'INVALID_ENVELOPE'],
    ['a file of another schema version', '{"schemaVersion":1,"savedAt":1,"data":{"cash":"1","orders":2}}', 'WRONG_VERSION'],
    ['data that fails the schema', '{"schemaVersion":2,"savedAt":1,"data":{"cash":1,"orders":2}}', 'INVALID_DATA'],
  ])('sets aside %s and says why', async (_name, contents, reason) => {
    await writeFile(path, contents);
    const result = await readStateFile(path, format, clock);
    expect(result).toMatchObject({ status: 'corrupt', reason });
    if (result.status !== 'corrupt') throw new Error('expected corrupt');
    expect(result.movedTo).toBe(`${path}.corrupt-20251102T063000000Z`);
    expect(await readFile(result.movedTo, 'utf8')).toBe(contents);
    expect(await readdir(dir)).toEqual(['checkpoint.json.corrupt-20251102T063000000Z']);
  });

  it('never overwrites an earlier corrupt file set aside at the same time', async () => {
    await writeFile(path, 'first');
    const first = await moveAside(path, clock);
    await writeFile(path, 'second');
    const second = await moveAside(path, clock);
    expect(second).not.toBe(first);
    expect(await readFile(first, 'utf8')).toBe('first');
    expect(await readFile(second, 'utf8')).toBe('second');
  });

  it('turns a failed write into a typed, retryable error and leaves the old file intact', async () => {
    await writeStateFile(path, { cash: '1', orders: 1 }, format, clock);
    const writer = new FaultyWriter().failWith('ENOSPC');
    const error = await writeStateFile(path, { cash: '2', orders: 2 }, format, clock, writer.write).catch((e) => e);
    expect(error).toBeInstanceOf(StateFileError);
    expect(error).toMatchObject({ code: 'STATE_FILE_WRITE_FAILED', retryable: true, path });
    expect(error.message).toContain('ENOSPC');
    expect(await readStateFile(path, format, clock)).toMatchObject({ status: 'ok', data: { cash: '1', orders: 1 } });
  });

  it('marks a writer bug as not retryable', async () => {
    const writer = new FaultyWriter().throwBug();
    const error = await writeStateFile(path, { cash: '2', orders: 2 }, format, clock, writer.write).catch((e) => e);
    expect(error).toMatchObject({ code: 'STATE_FILE_WRITE_FAILED', retryable: false });
  });

  it('leaves no temp file behind after an atomic write', async () => {
    await writeStateFile(path, { cash: '1', orders: 1 }, format, clock);
    await writeStateFile(path, { cash: '2', orders: 2 }, format, clock);
    expect(await readdir(dir)).toEqual(['checkpoint.json']);
  });
});
