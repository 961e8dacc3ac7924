import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileOrderJournal } from '../../src/idempotency/orderJournal.js';
import { describeOrderJournalContract } from './orderJournalContract.js';

describeOrderJournalContract('FileOrderJournal', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aistock-file-journal-'));
  const opened: FileOrderJournal[] = [];
  return {
    open: (clock) => {
      const journal = new FileOrderJournal({ path: join(dir, 'orders.journal'), clock });
      opened.push(journal);
      return journal;
    },
    commits: () => opened.reduce((sum, journal) => sum + journal.stats().syncs, 0),
    close: () => rm(dir, { recursive: true, force: true }),
  };
});
