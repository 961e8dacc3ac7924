/** Where a replay is, as its progress line on a terminal says it. */
export interface ReplayProgress {
  bars: number;
  bytesRead: number;
  /** The file's size; null when it has none (a FIFO, a pipe). */
  totalBytes: number | null;
  elapsedMs: number;
}

/**
 * `12,288 bars · 31% of 2.1 MB · 45,000 bars/s · 0:07 left`: with no size known, bars and rate
 * only. The time left assumes the rest of the file reads as fast as what was read.
 */
export function progressLine({ bars, bytesRead, totalBytes, elapsedMs }: ReplayProgress): string {
  const parts = [`${bars.toLocaleString('en-US')} bars`];
  const known = totalBytes !== null && totalBytes > 0;
  if (known) parts.push(`${Math.min(100, Math.floor((100 * bytesRead) / totalBytes))}% of ${megabytes(totalBytes)}`);
  if (elapsedMs > 0) parts.push(`${Math.round((bars * 1_000) / elapsedMs).toLocaleString('en-US')} bars/s`);
  if (known && bytesRead > 0 && elapsedMs > 0) parts.push(`${clock((elapsedMs * Math.max(0, totalBytes - bytesRead)) / bytesRead)} left`);
  return parts.join(' · ');
}

function megabytes(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MB`;
}

/** m:ss, or h:mm:ss from an hour. */
function clock(ms: number): string {
  const seconds = Math.round(ms / 1_000);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const [h, m, s] = [Math.floor(seconds / 3_600), Math.floor((seconds % 3_600) / 60), seconds % 60];
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}
