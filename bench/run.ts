/**
 * Runs every `bench/*.bench.ts` in its own process (so one bench's heap cannot colour the
 * next one's figures), or only those named on the command line: `npm run bench -- checkpointer`.
 * Each bench prints JSON lines: {"bench","metric","value","unit"}.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(benchDir)
  .filter((name) => name.endsWith('.bench.ts'))
  .filter((name) => wanted.length === 0 || wanted.some((w) => name.startsWith(w)))
  .sort();

let failed = 0;
for (const file of files) {
  const run = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(benchDir, file)], { stdio: 'inherit' });
  if (run.status !== 0) {
    failed += 1;
    console.error(`bench ${file} exited with ${run.status ?? run.signal}`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
