import { describe, expect, it } from 'vitest';
import { storeChoiceFrom } from '../../src/cli/storeFlags.js';
import { UsageError } from '../../src/cli/usage.js';

/** The flags' checks are postgresStore's own (one rule, one place): only the flag names are the CLI's. */
describe('--store flags', () => {
  const store = { store: 'postgresql://aistock:s3cret@db:5432/trading', 'session-id': 'acct1' };

  it('accepts the shortest lease postgresStore runs with (2 ms), and refuses a shorter one with its rule under the flag\'s name', () => {
    expect(storeChoiceFrom({ ...store, 'lease-ms': '2' })?.sessionId).toBe('acct1');
    expect(() => storeChoiceFrom({ ...store, 'lease-ms': '1' })).toThrow(new UsageError('--lease-ms: expected a whole number of milliseconds, at least 2, got 1'));
    expect(() => storeChoiceFrom({ ...store, 'lease-ms': '1.5' })).toThrow(UsageError);
  });

  it('refuses a URL that is not postgresql://, naming it without its password', () => {
    const refusal = (() => {
      try {
        return storeChoiceFrom({ ...store, store: 'mysql://aistock:s3cret@db/trading' });
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toBeInstanceOf(UsageError);
    expect(String(refusal)).toContain('--store: expected a postgresql:// URL, got mysql://aistock@db/trading');
    expect(String(refusal)).not.toContain('s3cret');
  });
});
