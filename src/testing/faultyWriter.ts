import { atomicFileWriter, type FileWriter } from '../stateDir/stateFile.js';

/** An errno error as Node's fs raises it (`code`, `errno`, `syscall`, `path`). */
export function errnoError(code: string, path: string, syscall = 'write'): NodeJS.ErrnoException {
  const messages: Record<string, string> = {
    EIO: 'i/o error',
    ENOSPC: 'no space left on device',
    EACCES: 'permission denied',
    EROFS: 'read-only file system',
  };
  return Object.assign(new Error(`${code}: ${messages[code] ?? 'simulated failure'}, ${syscall} '${path}'`), {
    code,
    syscall,
    path,
  });
}

/**
 * A real file writer (atomicFileWriter by default) that fails on command, for
 * fault-injection tests: disk errors (`EIO`, `ENOSPC`, `EACCES`), an unexpected throw (a bug
 * in the writer, not an I/O error), or a write held until released (a slow disk).
 */
export class FaultyWriter {
  #failures: { kind: 'errno'; code: string } | { kind: 'bug' } | null = null;
  #remaining = 0;
  #gate: { promise: Promise<void>; release: () => void } | null = null;
  /** Every write attempted, successful or not, in order. */
  readonly attempts: string[] = [];
  /** Paths of the writes that reached the disk. */
  readonly written: string[] = [];

  constructor(private readonly inner: FileWriter = atomicFileWriter) {}

  /** The writer to inject. */
  readonly write: FileWriter = async (path, contents) => {
    this.attempts.push(path);
    if (this.#gate) await this.#gate.promise;
    const failure = this.#failures;
    if (failure && this.#remaining > 0) {
      this.#remaining -= 1;
      if (failure.kind === 'bug') throw new TypeError('writer bug: cannot read properties of undefined');
      throw errnoError(failure.code, path);
    }
    await this.inner(path, contents);
    this.written.push(path);
  };

  /** The next `times` writes fail with `code` (default: until {@link heal}). */
  failWith(code: 'EIO' | 'ENOSPC' | 'EACCES' | 'EROFS', times = Number.POSITIVE_INFINITY): this {
    this.#failures = { kind: 'errno', code };
    this.#remaining = times;
    return this;
  }

  /** The next `times` writes throw a non-I/O error, as a buggy writer would. */
  throwBug(times = 1): this {
    this.#failures = { kind: 'bug' };
    this.#remaining = times;
    return this;
  }

  /** Writes succeed again. */
  heal(): this {
    this.#failures = null;
    this.#remaining = 0;
    return this;
  }

  /** Writes wait (a slow disk) until {@link release}. */
  hold(): this {
    if (!this.#gate) {
      let release = (): void => undefined;
      const promise = new Promise<void>((resolve) => (release = resolve));
      this.#gate = { promise, release };
    }
    return this;
  }

  /** Lets held writes go on. */
  release(): this {
    this.#gate?.release();
    this.#gate = null;
    return this;
  }
}
