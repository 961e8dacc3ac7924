import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { atomicFileWriter } from '../stateDir/stateFile.js';
import { readReport, type ReportData, type ReportSources } from './buildReport.js';
import { renderReportHtml } from './reportHtml.js';

/** lightweight-charts' standalone production build (the `LightweightCharts` global), as the page inlines it. */
export async function chartsLibrarySource(): Promise<string> {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('lightweight-charts/package.json'));
  return readFile(join(root, 'dist', 'lightweight-charts.standalone.production.js'), 'utf8');
}

/**
 * Writes the report of `stateDir` to `out` (one self-contained HTML file, written atomically)
 * and returns what it shows. Refuses a state dir a running session holds (see {@link readReport}).
 * `sources`: where the ledger and checkpoint are when not in the state dir (a session on a store).
 */
export async function writeReport(
  stateDir: string,
  out: string,
  wallMs: () => number = Date.now,
  sources?: ReportSources,
): Promise<{ path: string; data: ReportData; bytes: number }> {
  const data = await readReport(stateDir, wallMs, sources);
  const html = renderReportHtml(data, await chartsLibrarySource());
  const path = resolve(out);
  await atomicFileWriter(path, html);
  return { path, data, bytes: Buffer.byteLength(html) };
}
