import { SessionOptionsSchema } from '../session/sessionOptions.js';
import { InvalidPostgresStoreOptionsError, postgresStore } from '../postgresStore/postgresStore.js';
import type { SessionStore } from '../session/sessionStore.js';
import { UsageError } from './usage.js';

/**
 * `--store URL --session-id ID [--standby] [--lease-ms N]`: the session's journal, checkpoints
 * and lease in PostgreSQL instead of the state dir's files (see postgresStore). Shared by the
 * commands that open a session's store.
 */

/** The flags, for `parseCommandLine`'s options. */
export const STORE_FLAGS = {
  store: { type: 'string' },
  'session-id': { type: 'string' },
  standby: { type: 'boolean', default: false },
  'lease-ms': { type: 'string' },
} as const;

/** The usage lines of {@link STORE_FLAGS}. */
export const STORE_USAGE = `  --store URL          keep the journal, checkpoints and lease in PostgreSQL
                       (postgresql://user:password@host:port/db) instead of the state dir
  --session-id ID      the session's id in the store (required with --store)
  --standby            with --store: wait while another process holds the session, and take
                       over when its lease expires (settling its unsettled orders first)
  --lease-ms N         with --store: how long a holder's lease lasts unless renewed (10000)
`;

/** What the flags chose: nothing (the state dir's files), or a store, its URL and the session id in it. */
export type StoreChoice = { store: SessionStore; url: string; sessionId: string } | null;

/** The store the flags name, checked; a wrong combination is a {@link UsageError} naming the flag. */
export function storeChoiceFrom(values: { store?: string; 'session-id'?: string; standby?: boolean; 'lease-ms'?: string }): StoreChoice {
  const url = values.store;
  if (url === undefined) {
    for (const flag of ['session-id', 'lease-ms'] as const) if (values[flag] !== undefined) throw new UsageError(`--${flag} needs --store`);
    if (values.standby === true) throw new UsageError('--standby needs --store');
    return null;
  }
  const sessionId = values['session-id'];
  if (sessionId === undefined) throw new UsageError('--store needs --session-id: the id names the session in the shared store');
  if (!SessionOptionsSchema.shape.sessionId.safeParse(sessionId).success) {
    throw new UsageError(`--session-id: expected 1 to 32 letters, digits, _ or -, got ${JSON.stringify(sessionId)}`);
  }
  const leaseText = values['lease-ms'];
  // The number itself (how small a lease may be, the URL's scheme) is postgresStore's rule: one rule, one place.
  if (leaseText !== undefined && !/^\d+$/.test(leaseText)) throw new UsageError(`--lease-ms: expected a whole number of milliseconds, got ${JSON.stringify(leaseText)}`);
  try {
    return { store: postgresStore({ url, standby: values.standby === true, ...(leaseText === undefined ? {} : { leaseMs: Number(leaseText) }) }), url, sessionId };
  } catch (error) {
    if (error instanceof InvalidPostgresStoreOptionsError) throw new UsageError(`${error.option === 'url' ? '--store' : '--lease-ms'}: ${error.detail}`);
    throw error;
  }
}
