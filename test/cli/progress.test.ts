import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { sampleSlice } from '../support/replayFixture.js';
import { progressLine } from '../../src/cli/progress.js';

describe('the replay progress line', () => {
  it('says bars done, the share of the file read, the rate and the time left', () => {
    expect(progressLine({ bars: 12_288, bytesRead: 1_048_576, totalBytes: 4_194_304, elapsedMs: 2_000 })).toBe('12,288 bars · 25% of 4.0 MB · 6,144 bars/s · 0:06 left');
  });

  it('writes hours past the hour, and nothing left at the end', () => {
    expect(progressLine({ bars: 1_000, bytesRead: 1, totalBytes: 3_601, elapsedMs: 1_000 })).toMatch(/ · 1:00:00 left$/);
    expect(progressLine({ bars: 5, bytesRead: 10, totalBytes: 10, elapsedMs: 500 })).toBe('5 bars · 100% of 0.0 MB · 10 bars/s · 0:00 left');
  });

  it('gives bars and rate only when the input has no size (a FIFO), and no rate before any time passed', () => {
    expect(progressLine({ bars: 4_096, bytesRead: 1_048_576, totalBytes: null, elapsedMs: 1_000 })).toBe('4,096 bars · 4,096 bars/s');
    expect(progressLine({ bars: 0, bytesRead: 0, totalBytes: 100, elapsedMs: 0 })).toBe('0 bars · 0% of 0.0 MB');
  });
});

describe('aistock replay on a terminal', () => {
  it('shows the progress line while it reads, and clears it before the summary', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistock-progress-'));
    const bars = await sampleSlice(dir, 9_000);
    let stdout = '';
    const code = await main(['replay', bars, '--state-dir', join(dir, 'state')], {
      stdout: { isTTY: true, write: (text: string) => (stdout += text) },
      stderr: { write: () => undefined },
    });
    expect(code).toBe(0);
    expect(stdout).toMatch(/\r[\d,]+ bars · 100% of \d+\.\d MB · [\d,]+ bars\/s · 0:00 left\x1b\[K/);
    expect(stdout).toMatch(/\r\x1b\[Kthis run: +bars \d+ accepted/);
  }, 60_000);
});
