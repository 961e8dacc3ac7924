import { randomBytes } from 'node:crypto';
import { PostgresPaperBrokerLedger } from '../../src/postgresStore/postgresPaperBrokerLedger.js';
import { describePaperBrokerLedgerContract } from '../broker/paperBrokerLedgerContract.js';
import { useMigratedDatabase } from './postgresTestStore.js';

const database = useMigratedDatabase('broker_ledger');

describePaperBrokerLedgerContract('PostgresPaperBrokerLedger (aistock_broker_*)', { uniqueClientOrderIds: true }, async () => {
  // A session of its own per test: the tables are keyed by it.
  const sessionId = `l-${randomBytes(6).toString('hex')}`;
  const opened: PostgresPaperBrokerLedger[] = [];
  const commits = (): number => opened.reduce((sum, ledger) => sum + ledger.stats().commits, 0);
  return {
    open: () => {
      const ledger = new PostgresPaperBrokerLedger({ pool: database.pool(), sessionId, where: 'the test database' });
      opened.push(ledger);
      return ledger;
    },
    commitsDuring: async (run) => {
      const before = commits();
      await run();
      return commits() - before;
    },
    close: async () => undefined,
  };
});
