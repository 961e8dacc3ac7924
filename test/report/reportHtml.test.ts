import { describe, expect, it } from 'vitest';
import { parseMoney } from '../../src/common/money.js';
import type { ReportData } from '../../src/report/buildReport.js';
import { nextPoint } from '../../src/report/equityCurve.js';
import { escapeHtml, renderReportHtml, scriptJson } from '../../src/report/reportHtml.js';
import { fifoRoundTrips } from '../../src/report/roundTrips.js';

const HOSTILE = `<img src=x onerror="alert('x')">&</script><!--`;

function hostileReport(): ReportData {
  const point = nextPoint(null, Date.UTC(2025, 9, 20), parseMoney('100'), parseMoney('100'), 0n);
  return {
    stateDir: `/tmp/${HOSTILE}`,
    generatedAt: 0,
    runs: [{ run: 1, startedAt: 0, endedAt: null, file: `/data/${HOSTILE}.csv`, startEquity: '100', endEquity: null, ordersSubmitted: null, fills: null, denied: null }],
    account: { initialCash: parseMoney('100'), cash: parseMoney('100'), equity: parseMoney('100'), netDeposits: 0n, grossExposure: 0n, source: 'checkpoint' },
    totalReturn: 0n,
    curve: [point],
    bucketMs: 60_000,
    maxDrawdown: null,
    maxExposure: null,
    fills: 0,
    book: fifoRoundTrips([]),
    symbols: [],
    denials: { denied: 1, byReason: { [HOSTILE]: 1 } },
    barsRejected: { [HOSTILE]: 2 },
    risk: [{ state: 'halted', from: point.at, to: point.at + 60_000, reasons: [`MANUAL_HALT: ${HOSTILE}`] }],
    notes: [HOSTILE],
  };
}

describe('renderReportHtml', () => {
  it('escapes every string that comes from data: state dir, reasons, file names, notes', () => {
    const html = renderReportHtml(hostileReport(), '/* charts */');

    expect(html).not.toContain('<img');
    expect(html).not.toContain(`onerror="`);
    expect(html).not.toContain('<!--');
    // The only </script> tags are the three the page itself closes.
    expect(html.match(/<\/script>/g)).toHaveLength(3);
    expect(html).toContain(escapeHtml(HOSTILE));
  });

  it('keeps embedded JSON and an inlined library inside their script elements', () => {
    expect(scriptJson({ a: '</script><b>&' })).toBe('{"a":"\\u003c/script\\u003e\\u003cb\\u003e\\u0026"}');
    const html = renderReportHtml(hostileReport(), 'var s = "</script><!--";');
    expect(html.match(/<\/script>/g)).toHaveLength(3);
    expect(html).toContain('var s = "<\\/script><\\!--";');
  });

  it('shows each figure with its exact value in a data attribute', () => {
    const html = renderReportHtml(hostileReport(), '');
    expect(html).toContain('data-figure="equity" data-value="100.00"');
    expect(html).toContain('data-figure="return" data-value="0"');
    expect(html).toContain('data-figure="denied" data-value="1"');
  });
});
