import { main } from '../../src/cli/main.js';

/** What one in-process `aistock` command did. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `aistock …` in-process, capturing its output; rejects if it takes longer than `timeoutMs`. */
export async function aistock(argv: string[], timeoutMs = 10_000): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`aistock ${argv.join(' ')} hung (${timeoutMs} ms)`)), timeoutMs);
  });
  try {
    const code = await Promise.race([
      main(argv, { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } }),
      hung,
    ]);
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}
