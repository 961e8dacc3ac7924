import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ManualClock } from '../../src/common/clock.js';
import type { CheckpointStore } from '../../src/checkpointer/checkpointStore.js';

/**
 * The contract every {@link CheckpointStore} keeps, run against the file store and PostgreSQL's:
 * the same versioned envelope, zod-checked on read, a bad snapshot set aside (never deleted)
 * and reported, keys refused that the file store could not name.
 */

/** One test's store; `corrupt(key, text)` replaces a key's stored envelope with `text` behind the store's back. */
export interface CheckpointStoreUnderTest {
  store(clock: ManualClock): CheckpointStore;
  corrupt(key: string, text: string): Promise<void>;
  close(): Promise<void>;
}

const WALL = Date.UTC(2025, 0, 2, 14, 30);
const schema = z.object({ cash: z.string(), bars: z.number().int() });

export function describeCheckpointStoreContract(name: string, make: () => Promise<CheckpointStoreUnderTest>): void {
  describe(`CheckpointStore contract: ${name}`, () => {
    let under: CheckpointStoreUnderTest;
    beforeEach(async () => {
      under = await make();
    });
    afterEach(async () => under.close());

    it('reads back the newest snapshot of each key with the time it was saved, and a missing key as missing', async () => {
      const clock = new ManualClock({ wallMs: WALL });
      const store = under.store(clock);
      await store.write([{ key: 'checkpoint', snapshot: { cash: '100', bars: 1 } }, { key: 'other', snapshot: { cash: '5', bars: 0 } }]);
      clock.advance(1_000);
      await store.write([{ key: 'checkpoint', snapshot: { cash: '99.5', bars: 2 } }]);
      expect(await under.store(clock).read('checkpoint', schema)).toEqual({ status: 'ok', data: { cash: '99.5', bars: 2 }, savedAt: WALL + 1_000 });
      expect(await store.read('other', schema)).toMatchObject({ status: 'ok', data: { cash: '5', bars: 0 } });
      expect(await store.read('never', schema)).toEqual({ status: 'missing' });
    });

    it.each([
      ['not JSON', '{"schemaVersion":1,', 'UNPARSABLE'],
      ['another schema version', `{"schemaVersion":2,"savedAt":${WALL},"data":{"cash":"1","bars":1}}`, 'WRONG_VERSION'],
      ['data its schema refuses', `{"schemaVersion":1,"savedAt":${WALL},"data":{"cash":1,"bars":1}}`, 'INVALID_DATA'],
    ])('sets aside a snapshot that is %s, says where, and then reads the key as missing', async (_what, text, reason) => {
      const store = under.store(new ManualClock({ wallMs: WALL }));
      await store.write([{ key: 'checkpoint', snapshot: { cash: '1', bars: 1 } }]);
      await under.corrupt('checkpoint', text);
      const read = await store.read('checkpoint', schema);
      expect(read).toMatchObject({ status: 'corrupt', reason, movedTo: expect.any(String) as string });
      expect(await store.read('checkpoint', schema)).toEqual({ status: 'missing' });
    });

    it('sets aside a snapshot on request (one that parsed but broke an invariant)', async () => {
      const store = under.store(new ManualClock({ wallMs: WALL }));
      await store.write([{ key: 'checkpoint', snapshot: { cash: '1', bars: 1 } }]);
      expect(typeof (await store.setAside('checkpoint'))).toBe('string');
      expect(await store.read('checkpoint', schema)).toEqual({ status: 'missing' });
    });

    it('refuses a key that could not name a file', async () => {
      const store = under.store(new ManualClock({ wallMs: WALL }));
      await expect(store.write([{ key: '../escape', snapshot: {} }])).rejects.toMatchObject({ code: 'INVALID_CHECKPOINT_KEY' });
    });
  });
}
