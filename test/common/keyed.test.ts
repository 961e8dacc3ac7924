import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { SymbolMap, symbolMapSchema } from '../../src/common/keyed.js';

describe('SymbolMap', () => {
  it('keeps a copy and its original apart: a change to either is not seen by the other', () => {
    const original = new SymbolMap([
      ['AAPL', 1],
      ['MSFT', 2],
    ]);
    const copy = SymbolMap.copyOf(original);
    copy.set('AAPL', 10);
    copy.delete('MSFT');
    copy.set('NVDA', 3);
    original.set('TSLA', 4);
    expect([...original]).toEqual([
      ['AAPL', 1],
      ['MSFT', 2],
      ['TSLA', 4],
    ]);
    expect([...copy]).toEqual([
      ['AAPL', 10],
      ['NVDA', 3],
    ]);
    expect(original.has('NVDA')).toBe(false);
    expect(copy.get('TSLA')).toBeUndefined();
    expect([original.size, copy.size]).toEqual([3, 2]);
  });

  it('treats a symbol named like an Object member as a plain key', () => {
    const map = new SymbolMap<number>();
    expect(map.get('constructor')).toBeUndefined();
    map.set('toString', 1).set('__proto__', 2);
    const json = map.toJSON();
    expect(Object.getPrototypeOf(json)).toBeNull();
    expect(Object.entries(json)).toEqual([
      ['toString', 1],
      ['__proto__', 2],
    ]);
  });

  it('refuses an undefined value, which would read as an absent symbol', () => {
    expect(() => new SymbolMap<number | undefined>().set('AAPL', undefined)).toThrow(TypeError);
  });

  it('copies a plain Map, and reads back from JSON what it wrote', () => {
    const copy = SymbolMap.copyOf(new Map([['AAPL', 5]]));
    expect(copy).toBeInstanceOf(SymbolMap);
    const parsed = symbolMapSchema(z.number()).parse(JSON.parse(JSON.stringify(copy.set('MSFT', 6))));
    expect([...parsed.entries()]).toEqual([
      ['AAPL', 5],
      ['MSFT', 6],
    ]);
    expect([...parsed.keys()]).toEqual(['AAPL', 'MSFT']);
    expect([...parsed.values()]).toEqual([5, 6]);
  });

  it('answers like a Map over any sequence of sets, deletes and copies', () => {
    const symbol = fc.constantFrom('A', 'B', 'C', 'D', 'toString');
    const step = fc.oneof(
      fc.record({ op: fc.constant('set' as const), symbol, value: fc.integer() }),
      fc.record({ op: fc.constant('delete' as const), symbol }),
      fc.record({ op: fc.constant('copy' as const), which: fc.nat(8) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        // Maps of one family (copies of copies) beside their models; every step goes to the newest two.
        const maps: SymbolMap<number>[] = [new SymbolMap()];
        const models: Map<string, number>[] = [new Map()];
        for (const s of steps) {
          if (s.op === 'copy') {
            const from = s.which % maps.length;
            maps.push(SymbolMap.copyOf(maps[from] as SymbolMap<number>));
            models.push(new Map(models[from]));
            continue;
          }
          for (const i of [maps.length - 1, Math.max(0, maps.length - 2)]) {
            const map = maps[i] as SymbolMap<number>;
            const model = models[i] as Map<string, number>;
            if (s.op === 'set') {
              map.set(s.symbol, s.value + i);
              model.set(s.symbol, s.value + i);
            } else expect(map.delete(s.symbol)).toBe(model.delete(s.symbol));
          }
        }
        maps.forEach((map, i) => {
          const model = models[i] as Map<string, number>;
          expect(map.size).toBe(model.size);
          expect(new Map(map)).toEqual(model);
          for (const symbol of ['A', 'B', 'C', 'D', 'toString']) expect(map.has(symbol)).toBe(model.has(symbol));
        });
      }),
    );
  });
});
