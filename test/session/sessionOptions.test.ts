import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PaperBroker } from '../../src/broker/paperBroker.js';
import { InvalidSessionOptionsError, parseSessionOptions } from '../../src/session/sessionOptions.js';

describe('the session options', () => {
  it('give the default PaperBroker the paperBroker costs, their defaults where left out', () => {
    expect(parseSessionOptions({ stateDir: 'x', paperBroker: { commissionPerShare: '0.005' } }).paperBroker).toEqual({
      slippageBps: 0,
      commissionPerShare: '0.005',
      minCommission: '0',
    });
  });

  it('refuse an unknown paperBroker key, naming it', () => {
    // Cast: the point is the check a caller without types (a JSON config) meets.
    const typo = { slippage: 1 } as unknown as { slippageBps: number };
    expect(() => parseSessionOptions({ stateDir: 'x', paperBroker: typo })).toThrow(/Unrecognized key: "slippage"/);
  });

  it('refuse paperBroker costs beside a broker of your own, which they would not reach', async () => {
    const broker = await PaperBroker.open({ dir: join(await mkdtemp(join(tmpdir(), 'aistock-options-')), 'broker') });
    try {
      expect(() => parseSessionOptions({ stateDir: 'x', broker, paperBroker: { slippageBps: 1 } })).toThrow(InvalidSessionOptionsError);
    } finally {
      await broker.close();
    }
  });
});
