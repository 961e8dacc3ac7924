/** What the `dataGuard` and `bars` machines share about a `BARS` batch event. */

/** A batch refused because the component was not running: counted and reported, never dropped. */
export type BarsRefused = { type: 'BARS_REFUSED'; count: number; reason: 'NOT_RUNNING' };

/** How many bars an event carries (0 for any event that is not `BARS` or `BARS_SCREENED`). */
export function barCount(event: { type: string; bars?: readonly unknown[] }): number {
  return event.type === 'BARS' || event.type === 'BARS_SCREENED' ? (event.bars?.length ?? 0) : 0;
}

/** Whether an event is a `BARS` batch with no bars (a no-op). */
export function isEmptyBarBatch(event: { type: string; bars?: readonly unknown[] }): boolean {
  return event.type === 'BARS' && barCount(event) === 0;
}

/** The `BARS_REFUSED` report for a batch sent outside `running`. */
export function barsRefused(event: { type: string; bars?: readonly unknown[] }): BarsRefused {
  return { type: 'BARS_REFUSED', count: barCount(event), reason: 'NOT_RUNNING' };
}
