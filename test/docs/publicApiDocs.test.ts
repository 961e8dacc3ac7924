import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const entryPoints = ['src/index.ts', 'machines/index.ts', 'src/testing/index.ts'];

/** Every symbol an entry point exports that has no documentation comment, as `entry: name`. */
function undocumentedExports(): string[] {
  const program = ts.createProgram(
    entryPoints.map((entry) => join(root, entry)),
    { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, skipLibCheck: true, noEmit: true },
  );
  const checker = program.getTypeChecker();
  const missing: string[] = [];
  for (const entry of entryPoints) {
    const file = program.getSourceFile(join(root, entry));
    const moduleSymbol = file === undefined ? undefined : checker.getSymbolAtLocation(file);
    if (moduleSymbol === undefined) throw new Error(`cannot read ${entry}`);
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const target = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      // Re-exports of third-party symbols (xstate's SimulatedClock) are documented upstream.
      const declaration = target.declarations?.[0];
      if (declaration === undefined || declaration.getSourceFile().fileName.includes('node_modules')) continue;
      if (ts.displayPartsToString(target.getDocumentationComment(checker)).trim() === '') missing.push(`${entry}: ${exported.name}`);
    }
  }
  return missing;
}

describe('the public API', () => {
  it('has a doc comment on every export of every entry point', () => {
    expect(undocumentedExports()).toEqual([]);
  }, 60_000);
});
