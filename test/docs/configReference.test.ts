import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { DataGuardConfigSchema } from '../../src/dataGuard/dataGuard.js';
import { RiskLimitsSchema } from '../../src/risk/riskLimits.js';
import { PaperBrokerSettingsSchema } from '../../src/broker/paperBroker.js';
import { SessionOptionsSchema } from '../../src/session/createTradingSession.js';
import { ReplayConfigSchema } from '../../src/cli/replayConfig.js';

const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');

/**
 * The rows of the README table that documents `schemaName` (the bold heading naming it, up to the
 * next bold or # heading): option → the default cell, as written. Per table, since two tables may
 * share an option name with different defaults (`stateDir`).
 */
function rowsOf(schemaName: string): Map<string, string> {
  const sections = readme.split(/^(?=\*\*|#)/m);
  const section = sections.find((text) => (text.split('\n')[0] ?? '').includes(`(\`${schemaName}\``)) ?? '';
  const rows = new Map<string, string>();
  for (const match of section.matchAll(/^\| `([A-Za-z]+)` \| ([^|]+) \|/gm)) {
    const [, option, defaultCell] = match;
    if (option !== undefined && defaultCell !== undefined) rows.set(option, defaultCell.trim());
  }
  return rows;
}

/** What a default looks like in the README: `JSON`, or a parenthesised note when there is none. */
function documentedDefault(value: unknown): string | undefined {
  return value === undefined ? undefined : `\`${JSON.stringify(value)}\``;
}

describe.each([
  ['SessionOptionsSchema', SessionOptionsSchema as z.ZodType, { stateDir: 'x' }, ['stateDir']],
  ['RiskLimitsSchema', RiskLimitsSchema as z.ZodType, {}, []],
  ['DataGuardConfigSchema', DataGuardConfigSchema as z.ZodType, {}, []],
  // `dir` or a `ledger` store (not a setting): PaperBroker.open refuses neither or both.
  ['PaperBrokerSettingsSchema', PaperBrokerSettingsSchema as z.ZodType, {}, []],
  ['ReplayConfigSchema', ReplayConfigSchema as z.ZodType, {}, []],
] as const)('the README documents every %s option with its real default', (name, schema, required, requiredKeys) => {
  const rows = rowsOf(name);
  const defaults = schema.parse(required) as Record<string, unknown>;
  const shape = (schema as unknown as { shape?: Record<string, unknown>; def?: { in?: { shape?: Record<string, unknown> } } });
  const keys = Object.keys(shape.shape ?? shape.def?.in?.shape ?? defaults);

  it.each(keys)('%s', (key) => {
    const cell = rows.get(key);
    expect(cell, `README has no row for ${key}`).toBeDefined();
    if ((requiredKeys as readonly string[]).includes(key)) expect(cell).toBe('(required)');
    else expect(cell).toBe(documentedDefault(defaults[key]) ?? '(none)');
  });
});
