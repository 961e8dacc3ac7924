#!/usr/bin/env node
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

// The CLI's V8 settings (the benches run with the same list), set before anything is allocated or
// compiled (README, "Embedding a session"):
// - no allocation-site pretenuring: it misjudges the session's short-lived persistent state and
//   promotes it wholesale, which made live ingest 2-3x slower;
// - a quarter of the default interrupt budget: a replay's batch handlers run a few hundred times,
//   too few to be optimized at the default before the replay ends, and their unoptimized code
//   promotes each batch's bars to the old generation (1,000,000 bars: ~370,000 -> ~520,000 bars/s).
for (const flag of JSON.parse(readFileSync(new URL('v8-flags.json', import.meta.url), 'utf8'))) setFlagsFromString(flag);

const root = new URL('../', import.meta.url);
const compiled = new URL('dist/src/cli/main.js', root);

/** Newest modification time of the TypeScript sources under `dir`. */
function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = new URL(entry.name + (entry.isDirectory() ? '/' : ''), dir);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * An installed package ships the build and no TypeScript sources: it always runs the build (it
 * has no tsx). A clone of the repository has the sources: `npm install` builds dist/ (the
 * `prepare` script), and a source edited since makes that build stale.
 */
const isClone = existsSync(new URL('src/cli/main.ts', root));

function compiledIsFresh() {
  try {
    const builtAt = statSync(compiled).mtimeMs;
    return [new URL('src/', root), new URL('machines/', root)].every((dir) => newestSource(dir) <= builtAt);
  } catch {
    return false;
  }
}

// A closed pipe (`aistock bars … | head`) ends the output, not the process with a stack trace.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});
let cli;
if (!isClone || compiledIsFresh()) {
  cli = await import(compiled.href);
} else {
  // A clone with no build, or an older one: run the TypeScript sources through tsx's loader (a devDependency).
  // Its CommonJS hook too: a user's .ts strategy outside a "type": "module" package is CommonJS.
  const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
  esm.register();
  cjs.register();
  cli = await import('../src/cli/main.ts');
}
process.exitCode = await cli.main(process.argv.slice(2));
