import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Everything `stream` writes from now on. */
export function collect(stream: NodeJS.ReadableStream | null): { text(): string } {
  let text = '';
  stream?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { text: () => text };
}

/** The first capture group of the first line of `stream` that `pattern` matches; rejects after `timeoutMs` or at its end. */
export function lineMatching(stream: NodeJS.ReadableStream | null, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  if (stream === null) throw new Error('no stream to read');
  return new Promise((resolve, reject) => {
    createInterface({ input: stream })
      .on('line', (line) => {
        const match = pattern.exec(line);
        if (match !== null) resolve(match[1] ?? match[0]);
      })
      .on('close', () => reject(new Error(`no line matched ${pattern}`)));
    AbortSignal.timeout(timeoutMs).addEventListener('abort', () => reject(new Error(`no line matched ${pattern} within ${timeoutMs} ms`)));
  });
}

/** SIGKILLs `child` unless it has already ended (a test's cleanup). */
export function killIfRunning(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
