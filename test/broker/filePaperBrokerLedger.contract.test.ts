import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filePaperBrokerLedger } from '../../src/broker/paperBrokerLedger.js';
import { countSyncs } from '../../src/testing/syncCounter.js';
import { describePaperBrokerLedgerContract } from './paperBrokerLedgerContract.js';

describePaperBrokerLedgerContract('filePaperBrokerLedger (<stateDir>/broker)', { uniqueClientOrderIds: false }, async () => {
  const root = await mkdtemp(join(tmpdir(), 'aistock-ledger-contract-'));
  return {
    open: () => filePaperBrokerLedger(join(root, 'broker')),
    commitsDuring: async (run) => {
      const counter = await countSyncs();
      try {
        await run();
        return counter.syncs();
      } finally {
        counter.restore();
      }
    },
    close: () => rm(root, { recursive: true, force: true }),
  };
});
