import { optionsOrExit, parseCommandLine } from './usage.js';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError } from '../common/errors.js';
import { DOCUMENTED_MACHINES, renderMachinesDocument } from '../docs/machinesDocument.js';
import { atomicFileWriter } from '../stateDir/stateFile.js';
import { EXIT, type CliIo } from './io.js';

/** Usage of `aistock diagrams`. */
export const DIAGRAMS_USAGE = `usage: aistock diagrams [--out DIR]

Renders every machine as a Mermaid state diagram (stateDiagram-v2), from the machine
definitions, in one markdown document.
  --out DIR   write DIR/machines.md (atomically; DIR is created if missing) instead of
              printing the document
`;

/** The file `--out DIR` writes. */
export const DIAGRAMS_FILE_NAME = 'machines.md';

/**
 * `aistock diagrams [--out DIR]` (`argv` is what follows `diagrams`). Without `--out`, prints
 * the markdown document; with it, writes `DIR/machines.md` and says where. Returns the exit
 * code: 0 done, 2 bad arguments, 1 the file could not be written.
 */
export async function runDiagramsCommand(argv: string[], io: CliIo): Promise<number> {
  const options = optionsOrExit('diagrams', DIAGRAMS_USAGE, io, () => parseOptions(argv));
  if (typeof options === 'number') return options;
  const document = renderMachinesDocument();
  if (options.outDir === null) {
    io.stdout.write(document);
    return EXIT.ok;
  }
  const path = join(options.outDir, DIAGRAMS_FILE_NAME);
  try {
    await mkdir(options.outDir, { recursive: true });
    await atomicFileWriter(path, document);
  } catch (error) {
    io.stderr.write(`aistock diagrams: cannot write ${path}: ${describeError(error)}\n`);
    return EXIT.failure;
  }
  io.stdout.write(`wrote ${path} (${DOCUMENTED_MACHINES.length} machines)\n`);
  return EXIT.ok;
}

/** Parses the arguments; throws with a message naming the bad one. */
function parseOptions(argv: string[]): { outDir: string | null } | 'help' {
  const { values } = parseCommandLine({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: {
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) return 'help';
  if (values.out === '') throw new Error('--out needs a directory');
  return { outDir: values.out ?? null };
}
