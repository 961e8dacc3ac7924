import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * aistock's own directory (the one holding its package.json), found upwards from this module:
 * the same answer from the TypeScript sources (src/common) and from the compiled dist/src/common.
 */
export function packageRoot(): string {
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${import.meta.dirname}`);
  }
}
