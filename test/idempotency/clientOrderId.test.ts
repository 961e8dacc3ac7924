import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertClientOrderId,
  clientOrderId,
  isLegacyClientOrderId,
  parseClientOrderId,
  sessionTag,
  symbolPrefix,
  CLIENT_ORDER_ID_MAX_LENGTH,
  InvalidClientOrderIdError,
  InvalidOrderIntentError,
  type OrderIntentKey,
} from '../../src/idempotency/clientOrderId.js';

const intent: OrderIntentKey = {
  sessionId: 'paper-2025-01-02',
  strategyId: 'sma-cross',
  symbol: 'AAPL',
  barTime: Date.UTC(2025, 0, 2, 14, 30),
  intentIndex: 0,
  quantity: '10',
};

const intentArbitrary = fc.record({
  sessionId: fc.string({ minLength: 1, maxLength: 40 }),
  strategyId: fc.string({ minLength: 1, maxLength: 40 }),
  symbol: fc.string({ minLength: 1, maxLength: 12 }),
  barTime: fc.integer({ min: -(36 ** 9) + 1, max: 36 ** 9 - 1 }),
  intentIndex: fc.nat({ max: 1_000 }),
  quantity: fc.tuple(fc.boolean(), fc.nat(), fc.nat({ max: 9_999 })).map(([negative, whole, fraction]) => `${negative ? '-' : ''}${whole}.${fraction}`),
});

describe('client order ids', () => {
  it('gives the same intent the same id, as after a restart', () => {
    expect(clientOrderId({ ...intent })).toBe(clientOrderId(intent));
    // Pinned: a change here changes every id, and old reservations would stop matching.
    expect(clientOrderId(intent)).toBe('AAPL-m5ffaj40-b64b40b001fc58');
  });

  it('is short and broker-safe for any intent', () => {
    fc.assert(
      fc.property(intentArbitrary, (key) => {
        const id = clientOrderId(key);
        expect(id.length).toBeLessThanOrEqual(CLIENT_ORDER_ID_MAX_LENGTH);
        expect(id).toMatch(/^[A-Za-z0-9-]+$/);
        expect(assertClientOrderId(id)).toBe(id);
      }),
    );
  });

  it.each([
    ['session', { sessionId: 'paper-2025-01-03' }],
    ['strategy', { strategyId: 'breakout' }],
    ['symbol', { symbol: 'MSFT' }],
    ['bar time', { barTime: intent.barTime + 60_000 }],
    ['intent index', { intentIndex: 1 }],
    ['quantity', { quantity: '-10' }],
  ])('changes when the %s changes', (_field, change) => {
    expect(clientOrderId({ ...intent, ...change })).not.toBe(clientOrderId(intent));
  });

  it('does not let a field boundary shift produce the same id', () => {
    const a = clientOrderId({ ...intent, sessionId: 'ab', strategyId: 'c' });
    const b = clientOrderId({ ...intent, sessionId: 'a', strategyId: 'bc' });
    expect(a).not.toBe(b);
  });

  it('treats equal quantities written differently as the same quantity', () => {
    const id = clientOrderId({ ...intent, quantity: '10.5' });
    for (const quantity of ['+10.5', '010.50', '10.500']) expect(clientOrderId({ ...intent, quantity })).toBe(id);
    expect(clientOrderId({ ...intent, quantity: '-0.0' })).toBe(clientOrderId({ ...intent, quantity: '0' }));
  });

  it('prefixes the readable symbol and keeps odd symbols valid', () => {
    expect(clientOrderId({ ...intent, symbol: 'brk.b' })).toMatch(/^BRKB-m5ffaj40-[0-9a-f]{14}$/);
    expect(clientOrderId({ ...intent, symbol: 'VERYLONGSYMBOL' })).toMatch(/^VERYLO-m5ffaj40-[0-9a-f]{14}$/);
    expect(clientOrderId({ ...intent, symbol: '€/$' })).toMatch(/^X-m5ffaj40-[0-9a-f]{14}$/);
  });

  it.each([
    ['an empty session id', { sessionId: '' }],
    ['a fractional bar time', { barTime: 1.5 }],
    ['a bar time past the year 5188', { barTime: 36 ** 9 }],
    ['a bar time before the year -1248', { barTime: -(36 ** 9) }],
    ['a negative intent index', { intentIndex: -1 }],
    ['a quantity that is not a decimal', { quantity: '1e3' }],
  ])('refuses %s with a typed error', (_name, change) => {
    expect(() => clientOrderId({ ...intent, ...change })).toThrow(InvalidOrderIntentError);
  });

  it.each(['', 'has space', 'x'.repeat(33), 'AAPL_1'])('rejects %j as a client order id', (id) => {
    expect(() => assertClientOrderId(id)).toThrow(InvalidClientOrderIdError);
  });

  it('says which bar and which session made it (property)', () => {
    fc.assert(
      fc.property(intentArbitrary, (key) => {
        expect(parseClientOrderId(clientOrderId(key))).toEqual({
          symbolPrefix: symbolPrefix(key.symbol),
          barTime: key.barTime,
          tag: sessionTag(key.sessionId, key.strategyId),
        });
      }),
    );
  });

  it('tags each session and strategy apart, and no field boundary shift gives the same tag', () => {
    const tag = sessionTag('paper', 'sma-cross');
    expect(tag).toMatch(/^[0-9a-f]{6}$/);
    expect(sessionTag('paper', 'breakout')).not.toBe(tag);
    expect(sessionTag('paper-2', 'sma-cross')).not.toBe(tag);
    expect(sessionTag('ab', 'c')).not.toBe(sessionTag('a', 'bc'));
  });

  it.each(['RECON-AAPL-1735828200000', 'user-order-1', 'AAPL-6e0d4e7adcc08379c97f4608', 'AAPL-m5ffaj40-b64b40b001fc5'])(
    'parses no id it did not make: %s',
    (id) => {
      expect(parseClientOrderId(id)).toBeNull();
    },
  );

  it('recognises ids of the first scheme (aistock 0.1), and only those', () => {
    expect(isLegacyClientOrderId('AAPL-6e0d4e7adcc08379c97f4608')).toBe(true);
    expect(isLegacyClientOrderId(clientOrderId(intent))).toBe(false);
    expect(isLegacyClientOrderId('RECON-AAPL-1735828200000')).toBe(false);
  });
});
