/** Both clocks read at one instant: wall time (UTC ms) for calendars and records, monotonic for ages and rates. */
export interface ClockReading {
  readonly wallMs: number;
  readonly monoMs: number;
}

/** Reads a clock (`systemClock`, `ManualClock`) once, so both readings belong to one instant. */
export function readClock(clock: { wallMs(): number; monoMs(): number }): ClockReading {
  return { wallMs: clock.wallMs(), monoMs: clock.monoMs() };
}
