import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { StateMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import * as machines from '../../machines/index.js';
import { DIAGRAMS_USAGE, runDiagramsCommand } from '../../src/cli/diagramsCommand.js';
import { DOCUMENTED_MACHINES, renderMachinesDocument } from '../../src/docs/machinesDocument.js';

const committedDocument = join(import.meta.dirname, '../../docs/machines.md');

/** A CliIo that keeps what the command wrote. */
function captureIo() {
  const out = { stdout: '', stderr: '' };
  const io = {
    stdout: { write: (text: string) => (out.stdout += text) },
    stderr: { write: (text: string) => (out.stderr += text) },
  };
  return { io, out };
}

describe('docs/machines.md', () => {
  it('is exactly what the machines render to now', async () => {
    const committed = await readFile(committedDocument, 'utf8').catch(() => '(docs/machines.md is missing)');
    expect(committed, 'docs/machines.md is stale: run `npx aistock diagrams --out docs` and commit it').toBe(
      renderMachinesDocument(),
    );
  });

  it('documents every machine exported from machines/index.ts, each once', () => {
    const exported = Object.values(machines).filter((value) => value instanceof StateMachine);
    const documented = DOCUMENTED_MACHINES.map(({ machine }) => machine);
    expect(new Set(documented).size).toBe(documented.length);
    expect(new Set(documented)).toEqual(new Set(exported));
  });

  it('has a section with a summary and a Mermaid state diagram for each machine', () => {
    const document = renderMachinesDocument();
    for (const { machine, summary } of DOCUMENTED_MACHINES) {
      expect(summary.length).toBeGreaterThan(40);
      expect(document).toContain(`\n## ${machine.id}\n\n${summary}`);
      expect(document).toContain(`\`\`\`mermaid\nstateDiagram-v2\n  [*] --> ${machine.id}\n`);
    }
  });
});

describe('aistock diagrams', () => {
  it('prints the document without --out', async () => {
    const { io, out } = captureIo();

    const code = await runDiagramsCommand([], io);

    expect(code).toBe(0);
    expect(out.stdout).toBe(renderMachinesDocument());
    expect(out.stderr).toBe('');
  });

  it('writes DIR/machines.md with --out DIR, creating DIR, and says where', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'aistock-diagrams-')), 'docs');
    const { io, out } = captureIo();

    const code = await runDiagramsCommand(['--out', dir], io);

    expect(code).toBe(0);
    expect(await readFile(join(dir, 'machines.md'), 'utf8')).toBe(renderMachinesDocument());
    expect(out.stdout).toBe(`wrote ${join(dir, 'machines.md')} (${DOCUMENTED_MACHINES.length} machines)\n`);
  });

  it('replaces an older machines.md', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistock-diagrams-'));
    await writeFile(join(dir, 'machines.md'), 'old diagrams\n');

    const code = await runDiagramsCommand(['--out', dir], captureIo().io);

    expect(code).toBe(0);
    expect(await readFile(join(dir, 'machines.md'), 'utf8')).toBe(renderMachinesDocument());
  });

  it('exits 1 and names the path when the directory cannot be made', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'aistock-diagrams-'));
    const notADir = join(parent, 'file');
    await writeFile(notADir, 'a file, not a directory');
    const { io, out } = captureIo();

    const code = await runDiagramsCommand(['--out', join(notADir, 'docs')], io);

    expect(code).toBe(1);
    expect(out.stderr).toContain(`cannot write ${join(notADir, 'docs', 'machines.md')}`);
  });

  it('exits 2 with its usage on an unknown option', async () => {
    const { io, out } = captureIo();

    const code = await runDiagramsCommand(['--format', 'svg'], io);

    expect(code).toBe(2);
    expect(out.stderr).toContain('unknown option --format');
    expect(out.stderr).toContain(DIAGRAMS_USAGE);
  });

  it('prints its usage with --help', async () => {
    const { io, out } = captureIo();

    expect(await runDiagramsCommand(['--help'], io)).toBe(0);
    expect(out.stdout).toBe(DIAGRAMS_USAGE);
  });

  it('runs as `aistock diagrams` and prints the same document', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [join(import.meta.dirname, '../../bin/aistock.js'), 'diagrams'], {
      maxBuffer: 1 << 22,
    });
    expect(stdout).toBe(renderMachinesDocument());
  });
});
