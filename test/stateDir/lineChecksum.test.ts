import fc from 'fast-check';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { checkLine, crc32OfBytes, recordOf, withChecksum } from '../../src/stateDir/lineChecksum.js';

describe('a line checksum', () => {
  // Values from Python's zlib.crc32 over the same bytes, so the format is not only self-consistent.
  it.each([
    ['{"id":"AAPL-m5ffaj40-b64b40b001fc58","state":"submitted","at":1735828200000}', '92580249'],
    ['{"note":"€ 日本"}', '1a487b72'],
  ])('is the CRC-32 of the bytes before its key, as the last key of the same JSON object: %s', (json, crc) => {
    const line = withChecksum(json);
    expect(line).toBe(`${json.slice(0, -1)},"crc32":"${crc}"}`);
    expect(JSON.parse(line)).toEqual({ ...JSON.parse(json), crc32: crc });
    expect(checkLine(line)).toEqual({ status: 'ok' });
    expect(recordOf(line)).toBe(json);
  });

  it('tells a line whose bytes changed from one that carries no checksum', () => {
    const line = withChecksum('{"qty":"10","price":"187.12"}');
    expect(checkLine(line.replace('187', '188'))).toEqual({ status: 'mismatch', written: expect.stringMatching(/^[0-9a-f]{8}$/), computed: expect.stringMatching(/^[0-9a-f]{8}$/) });
    expect(checkLine('{"qty":"10","price":"187.12"}')).toEqual({ status: 'missing' });
    // Upper-case or non-hex digits, a short checksum, a renamed key: not a checksum at all.
    expect(checkLine(line.replace(/"crc32":"([0-9a-f]{8})"/, (_, hex: string) => `"crc32":"${hex.toUpperCase().replace(/[0-9]/g, 'A')}"`))).toEqual({ status: 'missing' });
    expect(checkLine(line.replace(/"crc32":"[0-9a-f]/, '"crc32":"'))).toEqual({ status: 'missing' });
    expect(checkLine(line.replace('"crc32"', '"crc33"'))).toEqual({ status: 'missing' });
    expect(checkLine('')).toEqual({ status: 'missing' });
  });
});

describe('the CRC-32 the journal computes over bytes while loading', () => {
  it("equals zlib's over any range of any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (bytes, a, b) => {
        const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
        const end = start + (bytes.length - start === 0 ? 0 : b % (bytes.length - start + 1));
        expect(crc32OfBytes(bytes, start, end)).toBe(crc32(bytes.subarray(start, end)));
      }),
      { numRuns: 2_000 },
    );
  });
});
