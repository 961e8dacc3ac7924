/** Where a command writes, so tests can capture it and `main` can pass the real streams. */
export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown };
  /** Opens a page in the user's browser (`--inspect`'s live view); default: the system's opener, when stderr is a terminal. */
  openPage?: (url: string) => void;
}

/** Exit codes of the `aistock` command (DESIGN.md's contract). */
export const EXIT = {
  ok: 0,
  failure: 1,
  badInput: 2,
  locked: 3,
  /** The run finished, but at stop the portfolio and the broker disagree beyond the session's own pending orders. */
  diverged: 4,
  /** The state dir could not be written (full disk, read-only): what did not persist is named; fix it and resume. */
  notPersisted: 5,
} as const;
