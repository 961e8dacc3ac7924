import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { DataGuardConfigSchema } from '../../src/dataGuard/dataGuard.js';
import { RiskLimitsSchema } from '../../src/risk/riskLimits.js';
import { PaperBrokerSettingsSchema } from '../../src/broker/paperBroker.js';
import { SessionOptionsSchema } from '../../src/session/createTradingSession.js';

const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');

/** The README's configuration rows: option → the default cell, as written. */
const rows = new Map<string, string>();
for (const match of readme.matchAll(/^\| `([A-Za-z]+)` \| ([^|]+) \|/gm)) {
  const [, option, defaultCell] = match;
  if (option !== undefined && defaultCell !== undefined) rows.set(option, defaultCell.trim());
}

/** What a default looks like in the README: `JSON`, or a parenthesised note when there is none. */
function documentedDefault(value: unknown): string | undefined {
  return value === undefined ? undefined : `\`${JSON.stringify(value)}\``;
}

describe.each([
  ['createTradingSession', SessionOptionsSchema as z.ZodType, { stateDir: 'x' }, ['stateDir']],
  ['risk limits', RiskLimitsSchema as z.ZodType, {}, []],
  ['data guard', DataGuardConfigSchema as z.ZodType, {}, []],
  ['PaperBroker', PaperBrokerSettingsSchema as z.ZodType, { dir: 'x' }, ['dir']],
] as const)('the README documents every %s option with its real default', (_name, schema, required, requiredKeys) => {
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
