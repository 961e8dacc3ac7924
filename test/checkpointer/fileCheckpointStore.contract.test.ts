import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileCheckpointStore } from '../../src/checkpointer/checkpointStore.js';
import { describeCheckpointStoreContract } from './checkpointStoreContract.js';

describeCheckpointStoreContract('fileCheckpointStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aistock-file-checkpoints-'));
  return {
    store: (clock) => fileCheckpointStore({ dir, clock }),
    corrupt: (key, text) => writeFile(join(dir, `${key}.json`), text),
    close: () => rm(dir, { recursive: true, force: true }),
  };
});
