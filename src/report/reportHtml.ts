import { formatDecimal, formatMoney, formatPrice, formatQty, RATIO_DECIMALS, type Money, type Ratio } from '../common/money.js';
import { drawdownRatio, type CurvePoint } from './equityCurve.js';
import type { ReportData } from './buildReport.js';
import { formatSignedPercent, type RiskInterval } from './reportFigures.js';

/**
 * The report as one self-contained HTML page: the figures (each with its exact value in a
 * `data-value` attribute), the charts (TradingView's lightweight-charts, whose standalone build
 * the caller passes in and the page inlines, so it opens offline), and the tables. Every string
 * that comes from data — the state dir, symbols, reasons, file names — is escaped. Pure.
 */

/** Escapes text for HTML content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** JSON that is safe inside a `<script>` element: no `<`, `>`, `&` or line separators survive as such. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A script's source that is safe inside a `<script>` element (no `</script`, no `<!--`). */
function inlineScript(source: string): string {
  return source.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

/** `"1234567.80"` → `"1,234,567.80"` (display only). */
function grouped(decimal: string): string {
  const [whole = '', fraction] = decimal.split('.');
  const sign = whole.startsWith('-') ? '-' : '';
  const digits = sign === '' ? whole : whole.slice(1);
  const withCommas = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${sign}${withCommas}${fraction === undefined ? '' : `.${fraction}`}`;
}

const money = (value: Money): string => grouped(formatMoney(value));
const signedMoney = (value: Money): string => `${value > 0n ? '+' : ''}${money(value)}`;
const ratioText = (value: Ratio): string => formatDecimal(value, RATIO_DECIMALS);
/** A price with at least two decimals (display only): `184.8` → `184.80`, `1.2345` stays. */
const price = (value: bigint): string => {
  const text = formatPrice(value);
  const decimals = text.split('.')[1]?.length ?? 0;
  return decimals >= 2 ? text : `${text}${decimals === 0 ? '.' : ''}${'0'.repeat(2 - decimals)}`;
};
const percent = (value: Ratio): string => `${formatDecimal(value * 100n, RATIO_DECIMALS, 2)}%`;

/** UTC time to the minute (seconds when not zero): `2025-10-20 13:30 UTC`. */
function utc(ms: number): string {
  const iso = new Date(ms).toISOString();
  const seconds = iso.slice(17, 19);
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}${seconds === '00' ? '' : `:${seconds}`}`;
}

function duration(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const rest = minutes % 60;
  return [days > 0 ? `${days}d` : '', hours > 0 ? `${hours}h` : '', rest > 0 || minutes === 0 ? `${rest}m` : ''].filter(Boolean).join(' ');
}

function figure(key: string, label: string, value: string | null, display: string, detail = ''): string {
  return (
    `<div class="figure"><dt>${escapeHtml(label)}</dt>` +
    `<dd data-figure="${escapeHtml(key)}" data-value="${escapeHtml(value ?? '')}">${escapeHtml(display)}</dd>` +
    (detail === '' ? '' : `<dd class="detail">${escapeHtml(detail)}</dd>`) +
    `</div>`
  );
}

/** A table; a header written `=name` heads a column of numbers (right-aligned). */
function table(id: string, headers: readonly string[], rows: readonly string[], empty: string): string {
  if (rows.length === 0) return `<p class="empty" id="${id}-empty">${escapeHtml(empty)}</p>`;
  const head = headers.map((h) => (h.startsWith('=') ? `<th class="num">${escapeHtml(h.slice(1))}</th>` : `<th>${escapeHtml(h)}</th>`)).join('');
  return `<table id="${id}"><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

const cell = (text: string, className = ''): string => `<td${className === '' ? '' : ` class="${className}"`}>${escapeHtml(text)}</td>`;
const pnlClass = (value: Money | null): string => (value === null || value === 0n ? 'num' : value > 0n ? 'num gain' : 'num loss');

/** Rows past this many are counted, not listed. */
const MAX_TRADE_ROWS = 10_000;

/** What the page script draws: chart data as numbers (display only; the figures above are exact). */
interface ChartData {
  times: number[];
  equity: number[];
  drawdownPct: number[];
  gross: number[];
  /** The risk state at each time: 0 active, 1 reducing, 2 halted. */
  risk: number[];
  markers: { time: number; state: string }[];
}

const RISK_LEVEL = { active: 0, reducing: 1, halted: 2 } as const;

function chartData(curve: readonly CurvePoint[], intervals: readonly RiskInterval[]): ChartData {
  // The chart needs strictly increasing whole seconds: sort (a file not in time order), last point per second.
  const bySecond = new Map<number, CurvePoint>();
  for (const point of [...curve].sort((a, b) => a.at - b.at)) bySecond.set(Math.floor(point.at / 1000), point);
  const times = [...bySecond.keys()];
  const points = [...bySecond.values()];
  const stateAt = (ms: number): RiskInterval['state'] => intervals.findLast((interval) => interval.from <= ms)?.state ?? 'active';
  const markers: ChartData['markers'] = [];
  intervals.forEach((interval, index) => {
    if (index === 0 && interval.state === 'active') return;
    // On the first charted time at or after the change (markers sit on the series' own times).
    const time = times.find((t) => t * 1000 >= interval.from);
    if (time !== undefined) markers.push({ time, state: interval.state });
  });
  return {
    times,
    equity: points.map((point) => Number(formatMoney(point.equity))),
    drawdownPct: points.map((point) => -Number(formatDecimal(drawdownRatio(point) * 100n, RATIO_DECIMALS, 4))),
    gross: points.map((point) => Number(formatMoney(point.gross))),
    risk: points.map((point) => RISK_LEVEL[stateAt(point.at)]),
    markers,
  };
}

/** The page's own script: draws the charts from the embedded data with lightweight-charts. */
const PAGE_SCRIPT = String.raw`
(function () {
  var body = document.body;
  try {
    var data = JSON.parse(document.getElementById('report-data').textContent);
    if (data.times.length === 0) { body.setAttribute('data-charts-ready', 'empty'); return; }
    var LC = window.LightweightCharts;
    var options = {
      autoSize: true,
      layout: { background: { type: 'solid', color: '#ffffff' }, textColor: '#1f2933' },
      grid: { vertLines: { color: '#eef1f4' }, horzLines: { color: '#eef1f4' } },
      timeScale: { timeVisible: true, secondsVisible: false },
      rightPriceScale: { borderVisible: false, minimumWidth: 90 },
    };
    function series(id, type, values, seriesOptions) {
      var chart = LC.createChart(document.getElementById(id), options);
      var s = chart.addSeries(type, seriesOptions);
      s.setData(data.times.map(function (t, i) { return { time: t, value: values[i] }; }));
      chart.timeScale().fitContent();
      return { chart: chart, series: s };
    }
    var equity = series('chart-equity', LC.LineSeries, data.equity, { color: '#2563eb', lineWidth: 2, priceFormat: { type: 'price', precision: 2, minMove: 0.01 } });
    var colors = { active: '#16a34a', reducing: '#d97706', halted: '#dc2626' };
    if (data.markers.length > 0) {
      LC.createSeriesMarkers(equity.series, data.markers.map(function (m) {
        return { time: m.time, position: 'aboveBar', shape: m.state === 'active' ? 'arrowUp' : 'arrowDown', color: colors[m.state], text: m.state };
      }));
    }
    var drawdown = series('chart-drawdown', LC.AreaSeries, data.drawdownPct, {
      lineColor: '#dc2626', topColor: 'rgba(220,38,38,0.05)', bottomColor: 'rgba(220,38,38,0.35)', invertFilledArea: true,
      priceFormat: { type: 'custom', formatter: function (v) { return v.toFixed(2) + '%'; } },
    });
    var exposure = series('chart-exposure', LC.AreaSeries, data.gross, { lineColor: '#7c3aed', topColor: 'rgba(124,58,237,0.35)', bottomColor: 'rgba(124,58,237,0.02)' });
    var riskChart = LC.createChart(document.getElementById('chart-risk'), Object.assign({}, options, { rightPriceScale: { visible: true, minimumWidth: 90, ticksVisible: false, borderVisible: false }, handleScale: false }));
    var riskSeries = riskChart.addSeries(LC.HistogramSeries, { priceLineVisible: false, lastValueVisible: false, priceFormat: { type: 'custom', formatter: function () { return ''; } } });
    var names = ['active', 'reducing', 'halted'];
    riskSeries.setData(data.times.map(function (t, i) { return { time: t, value: 1, color: colors[names[data.risk[i]]] }; }));
    riskChart.timeScale().fitContent();
    var charts = [equity.chart, drawdown.chart, exposure.chart, riskChart];
    var syncing = false;
    charts.forEach(function (chart) {
      chart.timeScale().subscribeVisibleLogicalRangeChange(function (range) {
        if (syncing || range === null) return;
        syncing = true;
        charts.forEach(function (other) { if (other !== chart) other.timeScale().setVisibleLogicalRange(range); });
        syncing = false;
      });
    });
    body.setAttribute('data-charts-ready', 'drawn');
  } catch (error) {
    body.setAttribute('data-charts-error', String(error && error.message || error));
    var note = document.getElementById('charts-error');
    note.textContent = 'The charts could not be drawn: ' + (error && error.message || error);
    note.hidden = false;
  }
})();
`;

const STYLE = `
:root { color-scheme: light; --muted: #52606d; --line: #e4e7eb; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2933; margin: 0 auto; max-width: 1200px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: var(--muted); margin: 0; } code { font-size: 13px; }
dl.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin: 18px 0 0; }
.figure { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.figure dt { color: var(--muted); font-size: 12px; } .figure dd { margin: 2px 0 0; font-size: 18px; font-variant-numeric: tabular-nums; }
.figure dd.detail { font-size: 12px; color: var(--muted); }
.chart { height: 260px; width: 100%; border: 1px solid var(--line); border-radius: 6px; }
#chart-risk { height: 70px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; white-space: nowrap; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.num, th.num { text-align: right; } .gain { color: #15803d; } .loss { color: #b91c1c; }
tr.total td { font-weight: 600; border-top: 2px solid var(--line); }
.state { display: inline-block; padding: 0 6px; border-radius: 4px; color: #fff; font-size: 12px; }
.state-active { background: #16a34a; } .state-reducing { background: #d97706; } .state-halted { background: #dc2626; }
.scroll { max-height: 480px; overflow: auto; border: 1px solid var(--line); border-radius: 6px; }
.empty { color: var(--muted); } .notes li { color: #7c2d12; }
.split { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
`;

function countRows(counts: Readonly<Record<string, number>>, attribute: string): string[] {
  return Object.entries(counts)
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))
    .map(([reason, n]) => `<tr data-${attribute}="${escapeHtml(reason)}" data-count="${n}">${cell(reason)}${cell(String(n), 'num')}</tr>`);
}

/** Renders the report; `chartsScript` is lightweight-charts' standalone production build (inlined). */
export function renderReportHtml(data: ReportData, chartsScript: string): string {
  const { account, maxDrawdown: drawdown, maxExposure: exposure } = data;
  const roundTrips = data.book.trips;
  const barsRejected = Object.values(data.barsRejected).reduce((n, c) => n + c, 0);
  const netTotal = data.symbols.reduce<Money | null>((sum, row) => (sum === null || row.net === null ? null : sum + row.net), 0n);
  const gain = account === null ? null : account.equity - account.netDeposits - account.initialCash;

  const figures = [
    figure('return', 'Total return', data.totalReturn === null ? null : ratioText(data.totalReturn), data.totalReturn === null ? 'n/a' : formatSignedPercent(data.totalReturn),
      gain === null ? '' : `${signedMoney(gain)} on ${account === null ? '' : money(account.initialCash)}`),
    figure('equity', 'Equity', account === null ? null : formatMoney(account.equity), account === null ? 'n/a' : money(account.equity),
      account === null ? '' : `cash ${money(account.cash)}`),
    figure('initial-cash', 'Starting cash', account === null ? null : formatMoney(account.initialCash), account === null ? 'n/a' : money(account.initialCash)),
    figure('max-drawdown', 'Max drawdown', drawdown === null ? '0' : ratioText(drawdown.ratio), drawdown === null ? '0.00%' : percent(drawdown.ratio),
      drawdown === null ? '' : `${money(drawdown.amount)} from ${money(drawdown.peak)}, ${utc(drawdown.at)}`),
    figure('max-exposure', 'Max gross exposure', exposure === null ? '0' : formatMoney(exposure.gross), exposure === null ? '0.00' : money(exposure.gross),
      exposure === null || exposure.ratio === null ? '' : `${formatDecimal(exposure.ratio, RATIO_DECIMALS, 2)}× equity, ${utc(exposure.at)}`),
    figure('exposure', 'Gross exposure now', account?.grossExposure == null ? null : formatMoney(account.grossExposure), account?.grossExposure == null ? 'n/a' : money(account.grossExposure)),
    figure('fills', 'Fills', String(data.fills), String(data.fills)),
    figure('round-trips', 'Round trips', String(roundTrips.length), String(roundTrips.length),
      `${roundTrips.filter((trip) => trip.netPnl > 0n).length} won, ${roundTrips.filter((trip) => trip.netPnl < 0n).length} lost`),
    figure('denied', 'Orders denied', String(data.denials.denied), String(data.denials.denied)),
    figure('bars-rejected', 'Bars rejected', String(barsRejected), String(barsRejected)),
  ].join('');

  const riskRows = data.risk.map(
    (interval) =>
      `<tr data-state="${interval.state}" data-from="${interval.from}" data-to="${interval.to}">` +
      `<td><span class="state state-${interval.state}">${escapeHtml(interval.state)}</span></td>` +
      `${cell(utc(interval.from))}${cell(utc(interval.to))}${cell(duration(interval.to - interval.from), 'num')}${cell(interval.reasons.join('; '))}</tr>`,
  );

  const symbolRows = data.symbols.map(
    (row) =>
      `<tr data-symbol="${escapeHtml(row.symbol)}" data-net="${row.net === null ? '' : formatMoney(row.net)}" data-fees="${formatMoney(row.fees)}">` +
      cell(row.symbol) +
      cell(String(row.fills), 'num') +
      cell(String(row.trips), 'num') +
      `<td class="${pnlClass(row.realized)}">${escapeHtml(signedMoney(row.realized))}</td>` +
      `<td class="${pnlClass(row.unrealized)}">${escapeHtml(row.unrealized === null ? 'n/a' : signedMoney(row.unrealized))}</td>` +
      cell(money(row.fees), 'num') +
      `<td class="${pnlClass(row.net)}">${escapeHtml(row.net === null ? 'n/a' : signedMoney(row.net))}</td>` +
      cell(formatQty(row.openQty), 'num') +
      cell(row.lastPrice === null ? '' : price(row.lastPrice), 'num') +
      `</tr>`,
  );
  if (data.symbols.length > 0) {
    const sum = (pick: (row: ReportData['symbols'][number]) => Money | null): Money | null =>
      data.symbols.reduce<Money | null>((total, row) => (total === null || pick(row) === null ? null : total + (pick(row) as Money)), 0n);
    const realized = sum((row) => row.realized) ?? 0n;
    const unrealized = sum((row) => row.unrealized);
    symbolRows.push(
      `<tr class="total" data-symbol-total data-net="${netTotal === null ? '' : formatMoney(netTotal)}">${cell('all')}${cell(String(data.fills), 'num')}${cell(String(roundTrips.length), 'num')}` +
        `<td class="${pnlClass(realized)}">${escapeHtml(signedMoney(realized))}</td>` +
        `<td class="${pnlClass(unrealized)}">${escapeHtml(unrealized === null ? 'n/a' : signedMoney(unrealized))}</td>` +
        cell(money(sum((row) => row.fees) ?? 0n), 'num') +
        `<td class="${pnlClass(netTotal)}">${escapeHtml(netTotal === null ? 'n/a' : signedMoney(netTotal))}</td>${cell('')}${cell('')}</tr>`,
    );
  }
  const reconciles = netTotal !== null && gain !== null && netTotal === gain;
  const pnlNote =
    netTotal === null || gain === null
      ? ''
      : reconciles
        ? `<p class="meta">The symbols’ net P&amp;L adds up to the account’s gain (${escapeHtml(signedMoney(gain))}).</p>`
        : `<p class="meta" id="pnl-difference">The symbols’ net P&amp;L (${escapeHtml(signedMoney(netTotal))}) differs from the account’s gain (${escapeHtml(signedMoney(gain))}) by ${escapeHtml(signedMoney(gain - netTotal))}: positions adopted from the broker, or fills the ledger does not hold.</p>`;

  const tradeRows = roundTrips.slice(0, MAX_TRADE_ROWS).map(
    (trip, index) =>
      `<tr data-trip="${index + 1}" data-net="${formatMoney(trip.netPnl)}">${cell(String(index + 1), 'num')}${cell(trip.symbol)}${cell(trip.direction)}${cell(formatQty(trip.qty), 'num')}` +
      `${cell(utc(trip.entryAt))}${cell(price(trip.entryPrice), 'num')}${cell(utc(trip.exitAt))}${cell(price(trip.exitPrice), 'num')}` +
      `<td class="${pnlClass(trip.grossPnl)}">${escapeHtml(signedMoney(trip.grossPnl))}</td>${cell(money(trip.fees), 'num')}` +
      `<td class="${pnlClass(trip.netPnl)}">${escapeHtml(signedMoney(trip.netPnl))}</td></tr>`,
  );
  const openRows = data.book.open.map(
    (lot) =>
      `<tr data-open-lot>${cell(lot.symbol)}${cell(lot.direction)}${cell(formatQty(lot.qty), 'num')}${cell(utc(lot.entryAt))}${cell(price(lot.entryPrice), 'num')}${cell(money(lot.fees), 'num')}</tr>`,
  );

  const runRows = data.runs.map(
    (run) =>
      `<tr data-run="${run.run}">${cell(String(run.run), 'num')}${cell(new Date(run.startedAt).toISOString())}${cell(run.endedAt === null ? 'did not finish' : new Date(run.endedAt).toISOString())}` +
      `${cell(run.file ?? '')}${cell(grouped(run.startEquity), 'num')}${cell(run.endEquity === null ? '' : grouped(run.endEquity), 'num')}` +
      `${cell(run.ordersSubmitted === null ? '' : String(run.ordersSubmitted), 'num')}${cell(run.fills === null ? '' : String(run.fills), 'num')}${cell(run.denied === null ? '' : String(run.denied), 'num')}</tr>`,
  );

  const curveNote =
    data.curve.length === 0
      ? ''
      : `<p class="meta">${data.curve.length} points from ${escapeHtml(utc(data.curve[0]?.at ?? 0))} to ${escapeHtml(utc(data.curve.at(-1)?.at ?? 0))}` +
        (data.bucketMs !== null && data.bucketMs > 60_000
          ? `; decimated to buckets of ${escapeHtml(duration(data.bucketMs))} of bar time, keeping each bucket’s first, last, lowest, highest, deepest-drawdown and largest-exposure points (so the figures above are exact)`
          : '') +
        `.</p>`;

  const charts = chartData(data.curve, data.risk);
  const noCurve = data.curve.length === 0 ? `<p class="empty" id="charts-empty">No equity curve was recorded in this state dir.</p>` : '';

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="aistock report">
<title>aistock report — ${escapeHtml(data.stateDir)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>aistock report</h1>
<p class="meta">State dir <code>${escapeHtml(data.stateDir)}</code> · made ${escapeHtml(new Date(data.generatedAt).toISOString())} · ${data.runs.length} recorded run(s) · bar times in UTC${account === null ? '' : ` · account from the ${account.source}`}</p>
</header>
<section id="figures"><dl class="figures">${figures}</dl></section>
<section id="charts">
<h2>Equity</h2>${noCurve}<p id="charts-error" class="notes" hidden></p>
<div class="chart" id="chart-equity" data-chart="equity"></div>
${curveNote}
<h2>Drawdown (% below the peak)</h2>
<div class="chart" id="chart-drawdown" data-chart="drawdown"></div>
<h2>Gross exposure</h2>
<div class="chart" id="chart-exposure" data-chart="exposure"></div>
<h2>Risk state</h2>
<div class="chart" id="chart-risk" data-chart="risk"></div>
</section>
<section id="risk">
<h2>Risk state timeline</h2>
${table('risk-intervals', ['state', 'from', 'to', '=for', 'reasons'], riskRows, 'No bar was recorded.')}
</section>
<section id="symbols">
<h2>P&amp;L by symbol</h2>
${table('symbol-pnl', ['symbol', '=fills', '=round trips', '=realized', '=unrealized', '=fees', '=net', '=open qty', '=last price'], symbolRows, 'No fills.')}
${pnlNote}
</section>
<section class="split">
<div id="denials"><h2>Orders denied, by reason</h2>${table('denials-by-reason', ['reason', '=intents'], countRows(data.denials.byReason, 'reason'), 'No order was denied.')}</div>
<div id="rejected"><h2>Bars rejected, by reason</h2>${table('bars-rejected', ['reason', '=bars'], countRows(data.barsRejected, 'rejected-reason'), 'No bar was rejected.')}</div>
</section>
<section id="trades">
<h2>Round trips (first in, first out)</h2>
${roundTrips.length > MAX_TRADE_ROWS ? `<p class="meta">The first ${MAX_TRADE_ROWS} of ${roundTrips.length} are listed.</p>` : ''}
<div class="scroll">${table('round-trips', ['=#', 'symbol', 'side', '=qty', 'entry', '=entry price', 'exit', '=exit price', '=gross P&L', '=fees', '=net P&L'], tradeRows, 'No round trip closed.')}</div>
${openRows.length === 0 ? '' : `<h2>Open lots</h2>${table('open-lots', ['symbol', 'side', '=qty', 'entry', '=entry price', '=fees so far'], openRows, '')}`}
</section>
<section id="runs">
<h2>Runs</h2>
${table('run-list', ['=run', 'started', 'ended', 'bar file', '=start equity', '=end equity', '=orders', '=fills', '=denied'], runRows, 'No run was recorded.')}
</section>
${data.notes.length === 0 ? '' : `<section id="notes"><h2>Notes</h2><ul class="notes">${data.notes.map((note) => `<li>${escapeHtml(note)}</li>`).join('')}</ul></section>`}
<script>${inlineScript(chartsScript)}</script>
<script type="application/json" id="report-data">${scriptJson(charts)}</script>
<script>${inlineScript(PAGE_SCRIPT)}</script>
</body>
</html>
`;
}
