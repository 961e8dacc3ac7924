/**
 * Builds the project, then runs every compiled `bench/*.bench.ts` in its own process (so one
 * bench's heap cannot colour the next one's figures), or only those named on the command line:
 * `npm run bench -- checkpointer`. Each bench prints JSON lines: {"bench","metric","value","unit"}.
 *
 * The benches run the compiled JavaScript with the V8 settings of the `aistock` CLI (see
 * bin/aistock.js): that is how the product runs, and tsx's loader would add its own thread and
 * its per-closure name helpers to every figure.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = join(benchDir, '..');
/** The CLI's V8 settings, read from the list bin/aistock.js sets. */
const v8Flags = z.array(z.string()).parse(JSON.parse(readFileSync(join(root, 'bin/v8-flags.json'), 'utf8')));
const wanted = process.argv.slice(2);
const files = readdirSync(benchDir)
  .filter((name) => name.endsWith('.bench.ts'))
  .filter((name) => wanted.length === 0 || wanted.some((w) => name.startsWith(w)))
  .sort();

const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  console.error('bench: the build failed');
  process.exit(1);
}
let failed = 0;
for (const file of files) {
  const compiled = join(root, 'dist/bench', file.replace(/\.ts$/, '.js'));
  const run = spawnSync(process.execPath, ['--expose-gc', ...v8Flags, compiled], { stdio: 'inherit' });
  if (run.status !== 0) {
    failed += 1;
    console.error(`bench ${file} exited with ${run.status ?? run.signal}`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
